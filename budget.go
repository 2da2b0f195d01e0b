package seamless

import (
	"context"
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/seamless-data/seamless/clock"
)

// The SLA budget engine (SPEC §4): sla.go holds the policy, this file enforces it for one
// request. Budgets are deadlines: each phase runs under a context bounded by what is
// left of its own budget and by the total deadline, time spent is cumulative per phase,
// and the first violation is recorded (the answer reports it; fail_fast turns it into
// *SeamlessSLAExceeded).

// budgets tracks a request's SLA phases: time spent per phase, deadlines, and the first
// violation.
type budgets struct {
	ctx       context.Context // the request's, for the trace ids of log records
	log       *slog.Logger
	tracer    trace.Tracer
	clock     clock.Clock
	policy    SLAPolicy
	began     time.Time
	node      string
	spent     map[string]time.Duration
	violation *SLAViolation
}

func newBudgets(ctx context.Context, log *slog.Logger, tr trace.Tracer, c clock.Clock, policy SLAPolicy, began time.Time, node string) *budgets {
	return &budgets{ctx: ctx, log: log, tracer: tr, clock: c, policy: policy, began: began, node: node, spent: map[string]time.Duration{}}
}

// phaseSpans names each phase's span (SPEC §8).
var phaseSpans = map[string]string{PhaseStorage: "seamless.storage", PhaseBackfill: "seamless.backfill", PhaseLive: "seamless.live"}

// span starts a phase's span with its SLA attributes.
func (b *budgets) span(ctx context.Context, phase string) (context.Context, trace.Span) {
	return b.tracer.Start(ctx, phaseSpans[phase], trace.WithAttributes(
		attribute.String("sla.phase", phase), attribute.Int64("sla.budget_ms", b.budgetMS(phase))))
}

func (b *budgets) budgetMS(phase string) int64 {
	switch phase {
	case PhaseStorage:
		return b.policy.MaxWaitStorageMS
	case PhaseBackfill:
		return b.policy.MaxWaitBackfillMS
	case PhaseLive:
		return b.policy.MaxWaitLiveMS
	case PhaseTotal:
		return b.policy.TotalDeadlineMS
	}
	return 0
}

// totalDeadline is the instant total_deadline_ms ends the request, if it is set.
func (b *budgets) totalDeadline() (time.Time, bool) {
	ms := b.policy.TotalDeadlineMS
	return b.began.Add(time.Duration(ms) * time.Millisecond), ms > 0
}

// phaseCtx bounds parent by what is left of the phase's budget and by the total
// deadline, whichever ends first: one timer per phase.
func (b *budgets) phaseCtx(parent context.Context, phase string) (context.Context, context.CancelFunc) {
	deadline, ok := b.totalDeadline()
	if ms := b.budgetMS(phase); ms > 0 {
		left := time.Duration(ms)*time.Millisecond - b.spent[phase]
		if d := b.clock.Now().Add(left); !ok || d.Before(deadline) {
			deadline, ok = d, true
		}
	}
	if !ok {
		return context.WithCancel(parent)
	}
	return b.clock.WithDeadline(parent, deadline)
}

// lazyTotal is the request's context bounded by total_deadline_ms, made on first use:
// an answer that never leaves its phases needs no timer for it.
type lazyTotal struct {
	b      *budgets
	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc
}

func (t *lazyTotal) get() context.Context {
	if t.ctx == nil {
		if d, ok := t.b.totalDeadline(); ok {
			t.ctx, t.cancel = t.b.clock.WithDeadline(t.parent, d)
		} else {
			t.ctx, t.cancel = context.WithCancel(t.parent)
		}
	}
	return t.ctx
}

func (t *lazyTotal) stop() {
	if t.cancel != nil {
		t.cancel()
	}
}

func (b *budgets) spend(phase string, since time.Time) {
	b.spent[phase] += b.clock.Now().Sub(since)
}

// run executes fn under the phase's remaining budget (and the total deadline). It
// reports whether a budget ran out; the error is fn's own failure, or
// *SeamlessSLAExceeded when a budget ran out under fail_fast.
func (b *budgets) run(parent context.Context, phase string, fn func(context.Context) error) (bool, error) {
	pctx, cancel := b.phaseCtx(parent, phase)
	defer cancel()
	pctx, span := b.span(pctx, phase)
	defer span.End()
	start := b.clock.Now()
	err := fn(pctx)
	b.spend(phase, start)
	if pctx.Err() != nil && parent.Err() == nil {
		span.SetAttributes(attribute.Bool("sla.violated", true))
	}
	if pctx.Err() == nil || parent.Err() != nil {
		if err == nil && parent.Err() != nil {
			err = parent.Err()
		}
		return false, err
	}
	return true, b.exceeded(b.expired(phase))
}

// expired describes the budget that ended a phase: the total deadline when that is
// what fired, else the phase's own.
func (b *budgets) expired(phase string) SLAViolation {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	if total, ok := b.totalDeadline(); ok && !b.clock.Now().Before(total) {
		return SLAViolation{Phase: PhaseTotal, ElapsedMS: ms(b.clock.Now().Sub(b.began)), BudgetMS: b.policy.TotalDeadlineMS}
	}
	return SLAViolation{Phase: phase, ElapsedMS: ms(b.spent[phase]), BudgetMS: b.budgetMS(phase)}
}

// exceeded records v (the first violation wins) and returns *SeamlessSLAExceeded when
// the policy says fail_fast, nil when the request should degrade instead.
func (b *budgets) exceeded(v SLAViolation) error {
	if b.violation == nil {
		b.violation = &v
		b.log.WarnContext(b.ctx, "seamless.sla.phase_exceeded", "node_id", b.node, "phase", v.Phase, "elapsed_ms", v.ElapsedMS,
			"budget_ms", v.BudgetMS, "missing_bars", v.MissingBars, "on_violation", b.policy.mode())
	}
	if b.policy.mode() == ViolationFailFast {
		return &SeamlessSLAExceeded{NodeID: b.node, SLAViolation: v}
	}
	return nil
}

// phases reports each phase's elapsed milliseconds, plus the total.
func (b *budgets) phases() map[string]float64 {
	out := make(map[string]float64, len(b.spent)+1)
	for k, v := range b.spent {
		out[k] = float64(v.Microseconds()) / 1000
	}
	out[PhaseTotal] = float64(b.clock.Now().Sub(b.began).Microseconds()) / 1000
	return out
}
