package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// requestAck sends msg and checks JetStream's acknowledgement, as
// jetstream's PublishMsg does with no retries, with the same errors; a
// plain positive acknowledgement is recognised without a JSON decode,
// which is most of the client's CPU per publish past the write itself.
func (p *Publisher) requestAck(ctx context.Context, msg *nats.Msg) error {
	resp, err := p.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			return jetstream.ErrNoStreamResponse
		}
		return err
	}
	return checkAck(resp.Data)
}

// ackPrefix opens every positive acknowledgement: nats-server writes the
// error member first and leaves it out when there is none.
var ackPrefix = []byte(`{"stream":"`)

// checkAck reports whether data is a positive JetStream acknowledgement,
// else the error it carries (an *jetstream.APIError, so errors.Is matches
// jetstream.ErrStreamNotFound and the like) or jetstream.ErrInvalidJSAck.
func checkAck(data []byte) error {
	if len(data) > len(ackPrefix)+1 && bytes.HasPrefix(data, ackPrefix) && data[len(ackPrefix)] != '"' &&
		data[len(data)-1] == '}' && !bytes.Contains(data, []byte(`"error"`)) {
		return nil
	}
	var ack struct {
		Error  *jetstream.APIError `json:"error"`
		Stream string              `json:"stream"`
	}
	if err := json.Unmarshal(data, &ack); err != nil {
		return jetstream.ErrInvalidJSAck
	}
	if ack.Error != nil {
		return fmt.Errorf("nats: %w", ack.Error)
	}
	if ack.Stream == "" {
		return jetstream.ErrInvalidJSAck
	}
	return nil
}
