package artifact

import (
	"context"

	"github.com/seamless-data/seamless"
)

// Publisher adapts a Registrar to seamless.ArtifactPublisher, naming producer in every
// manifest.
func Publisher(r Registrar, producer string) seamless.ArtifactPublisher {
	return publisher{r: r, producer: producer}
}

type publisher struct {
	r        Registrar
	producer string
}

func (p publisher) Publish(ctx context.Context, a seamless.ArtifactRequest) (string, error) {
	m, err := p.r.Publish(ctx, Artifact{
		NodeID: a.Series.NodeID, Interval: a.Series.Interval, Range: a.Range, Frame: a.Frame,
		AsOf: a.AsOf, ConformanceFlags: a.ConformanceFlags, Producer: p.producer,
	})
	return m.URI, err
}
