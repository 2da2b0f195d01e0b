package seamless

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// Domain is an execution domain (SPEC §5).
type Domain string

// Execution domains.
const (
	DomainBacktest Domain = "backtest"
	DomainDryrun   Domain = "dryrun"
	DomainLive     Domain = "live"
	DomainShadow   Domain = "shadow"
)

var domainAliases = map[string]Domain{
	"backtest": DomainBacktest, "backtesting": DomainBacktest, "compute": DomainBacktest,
	"offline": DomainBacktest, "sandbox": DomainBacktest, "validate": DomainBacktest, "validation": DomainBacktest,
	"dryrun": DomainDryrun, "dry_run": DomainDryrun, "dry-run": DomainDryrun, "paper": DomainDryrun,
	"papertrade": DomainDryrun, "paper_trade": DomainDryrun, "paper-trade": DomainDryrun, "sim": DomainDryrun, "simulation": DomainDryrun,
	"live": DomainLive, "prod": DomainLive, "production": DomainLive,
	"shadow": DomainShadow,
}

// NormalizeDomain maps a domain name or alias (case-insensitive) to its Domain; ""
// means no domain.
func NormalizeDomain(s string) (Domain, error) {
	if s == "" {
		return "", nil
	}
	if d, ok := domainAliases[strings.ToLower(strings.TrimSpace(s))]; ok {
		return d, nil
	}
	return "", badRequest("execution_domain", "unknown execution domain %q (want backtest, dryrun, live or shadow, or an alias)", s)
}

// pointInTime reports whether the domain replays history as of a fixed instant.
func (d Domain) pointInTime() bool { return d == DomainBacktest || d == DomainDryrun }

// SeamlessDomainPolicyError rejects a request its execution domain forbids (code
// domain_policy).
type SeamlessDomainPolicyError struct {
	Domain Domain
	NodeID string
	Reason string
}

func (e *SeamlessDomainPolicyError) Error() string {
	return fmt.Sprintf("domain policy (%s) for node %s: %s", e.Domain, e.NodeID, e.Reason)
}

// asOfGate enforces as_of monotonicity per (world, node) in live and shadow domains.
type asOfGate struct {
	mu   sync.Mutex
	last map[[2]string]time.Time
}

// observe records as_of for (world, node) and reports false when it goes backwards.
func (g *asOfGate) observe(world, node string, asOf time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.last == nil {
		g.last = map[[2]string]time.Time{}
	}
	k := [2]string{world, node}
	if prev, ok := g.last[k]; ok && asOf.Before(prev) {
		return false
	}
	g.last[k] = asOf
	return true
}
