package main

import (
	"encoding/json"
	"fmt"
)

// The minimal receiver's ways of reading the noticeId (serve-minimal -decode).
const (
	decodeScan = "scan"
	decodeJSON = "json"
)

// noticeIDReader returns the function that reads a body's noticeId for a
// -decode value.
func noticeIDReader(decode string) (func([]byte) string, error) {
	switch decode {
	case decodeScan, "":
		return scanNoticeID, nil
	case decodeJSON:
		return decodeNoticeID, nil
	}
	return nil, fmt.Errorf("-decode %q: want %s or %s", decode, decodeScan, decodeJSON)
}

// minimalEnvelope is a Cloud Recording notification's envelope as a
// typical Go receiver declares it: the fields the gateway routes on.
type minimalEnvelope struct {
	NoticeID       string `json:"noticeId"`
	NotificationID string `json:"notificationId"`
	ProductID      int    `json:"productId"`
	EventType      int    `json:"eventType"`
	NotifyMs       int64  `json:"notifyMs"`
	SID            string `json:"sid"`
	Payload        struct {
		Cname   string `json:"cname"`
		SID     string `json:"sid"`
		Details struct {
			MsgName string `json:"msgName"`
		} `json:"details"`
	} `json:"payload"`
}

// decodeNoticeID decodes the whole envelope with encoding/json (which
// validates the whole body first) and returns its noticeId, or the legacy
// notificationId; "" when the body is not such an object.
func decodeNoticeID(body []byte) string {
	var env minimalEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return ""
	}
	if env.NoticeID != "" {
		return env.NoticeID
	}
	return env.NotificationID
}
