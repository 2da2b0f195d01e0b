package wire

import (
	"errors"
	"reflect"
	"testing"

	"github.com/seamless-data/seamless"
)

// FuzzDecodeCommand: any client WebSocket message either decodes or is refused with a
// *seamless.RequestError (never a panic); a decoded subscribe or unsubscribe command
// encodes (EncodeCommand, the client's) to a message that decodes to the same
// subscription.
func FuzzDecodeCommand(f *testing.F) {
	for _, seed := range []string{
		`{"type":"auth","token":"s3cret"}`,
		`{"type":"subscribe","node_id":"ohlcv:demo:BTC-USD:1m","start":"2024-01-01T00:00:00Z"}`,
		`{"type":"subscribe","node_id":"ohlcv:demo:BTC-USD:1m","interval":60,"start":1717200000,"forming":true,"strategy":"partial_fill"}`,
		`{"type":"subscribe","node_id":"n","cursor":"c1.60","sla":"baseline","on_violation":"hold","min_coverage":0.5}`,
		`{"type":"unsubscribe","node_id":"ohlcv:demo:BTC-USD:1m","interval":"60"}`,
		`{"type":"unsubscribe","node_id":"n","start":1}`,
		`{"type":"subscribe","node_id":["a"]}`,
		`{"type":"subscribe","format":"arrow"}`,
		`{"type":"dance"}`,
		`{"type":1}`,
		`[1,2]`,
		`{"type":"subscribe","node_id":"n"} trailing`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cmd, err := DecodeCommand(msg)
		if err != nil {
			var re *seamless.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("%q: %T %v, want a RequestError", msg, err, err)
			}
			return
		}
		if cmd.Type == CommandAuth {
			if cmd.Token == "" {
				t.Fatalf("%q: an auth command without a token", msg)
			}
			return
		}
		again, err := EncodeCommand(cmd.Type, cmd.Subscribe)
		if err != nil {
			t.Fatalf("%q: EncodeCommand: %v", msg, err)
		}
		back, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("%q: re-encoded as %s: %v", msg, again, err)
		}
		want := cmd.Subscribe
		if cmd.Type == CommandUnsubscribe {
			want = seamless.SubscribeRequest{NodeID: want.NodeID, Interval: want.Interval}
		}
		// The overrides fold into the policy, as the provider does (see FuzzDecodeRequest).
		effective := func(r seamless.SubscribeRequest) seamless.SubscribeRequest {
			if r.SLA != nil {
				p := *r.SLA
				if r.MinCoverage > 0 {
					p.MinCoverage = r.MinCoverage
				}
				if r.MaxLagSeconds > 0 {
					p.MaxLagSeconds = r.MaxLagSeconds
				}
				r.SLA, r.MinCoverage, r.MaxLagSeconds = &p, 0, 0
			}
			return r
		}
		if back.Type != cmd.Type || !reflect.DeepEqual(effective(back.Subscribe), effective(want)) {
			t.Fatalf("%q: re-encoded as %s, decoded to %+v, want %+v", msg, again, back, cmd)
		}
	})
}
