package publish

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestCheckAck: positive acknowledgements as nats-server writes them pass;
// errors come out as jetstream's PublishMsg returns them.
func TestCheckAck(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error // nil: accepted
	}{
		{"stored", `{"stream":"AGORA_NCS","seq":12}`, nil},
		{"duplicate", `{"stream":"AGORA_NCS","seq":12,"duplicate": true}`, nil},
		{"domain", `{"stream":"AGORA_NCS","seq":3,"domain":"hub"}`, nil},
		{"member order", `{"seq":3,"stream":"AGORA_NCS"}`, nil},
		{"no stream", `{"error":{"code":404,"err_code":10059,"description":"stream not found"}}`, jetstream.ErrStreamNotFound},
		{"error after stream", `{"stream":"AGORA_NCS","error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`, &jetstream.APIError{ErrorCode: 10077}},
		{"empty stream", `{"stream":"","seq":1}`, jetstream.ErrInvalidJSAck},
		{"not json", `{"stream":"AGORA_NCS"`, jetstream.ErrInvalidJSAck},
		{"empty", ``, jetstream.ErrInvalidJSAck},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkAck([]byte(tt.data))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}
