package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a Prometheus registry holding the Go runtime and process
// collectors: the base registry of a Seamless process, to which the server and other
// components add their own metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// durationBuckets span 1 ms to 10 min: a health check and a cold million-bar backfill
// both land inside them (Prometheus's default buckets stop at 10 s).
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// answersCut counts /v1/bars answers cut off while being written, by whether the
	// client stalled past the stall deadline.
	answersCut *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "seamless_http_request_duration_seconds",
			Help:    "Time from request to last byte written, by route pattern.",
			Buckets: durationBuckets,
		}, []string{"route"}),
		answersCut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "seamless_http_answers_cut_total",
			Help: "/v1/bars answers cut off while being written: stalled=true when the client stopped reading past the stall deadline.",
		}, []string{"stalled"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.answersCut} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.answersCut.WithLabelValues("true")
	m.answersCut.WithLabelValues("false")
	return m, nil
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
