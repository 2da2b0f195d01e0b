package schemaregistry

import "github.com/prometheus/client_golang/prometheus"

// FailureMetric is the reference's name for the count of failed validations.
const FailureMetric = "seamless_schema_validation_failures_total"

// FailureCounter registers seamless_schema_validation_failures_total{subject,mode} with
// reg and returns a hook for Options.OnValidationFailure that counts into it.
func FailureCounter(reg prometheus.Registerer) (func(subject string, mode Mode), error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: FailureMetric,
		Help: "Payloads that deviated from their subject's approved schema, by subject and validation mode.",
	}, []string{"subject", "mode"})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return func(subject string, mode Mode) { c.WithLabelValues(subject, string(mode)).Inc() }, nil
}
