package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/seamless-data/seamless"
	"github.com/seamless-data/seamless/conformance"
	"github.com/seamless-data/seamless/grid"
)

// requestFlags are fetch's SLA and execution-domain flags (SPEC §4–5).
type requestFlags struct {
	sla                                         string
	totalMS, storageMS, backfillMS, liveMS, gap int64
	minCoverage, maxLag                         float64
	onViolation                                 string
	worldID, domain, asOf                       string
	conformance                                 string
	fingerprint                                 bool
	includeForming                              bool
}

func (f *requestFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.sla, "sla", "none", "SLA preset ("+strings.Join(seamless.SLAPresetNames(), ", ")+") or none; the flags below override its fields")
	fl.Int64Var(&f.totalMS, "total-deadline-ms", 0, "budget for the whole request, ms")
	fl.Int64Var(&f.storageMS, "max-wait-storage-ms", 0, "budget for storage reads, ms")
	fl.Int64Var(&f.backfillMS, "max-wait-backfill-ms", 0, "budget for synchronous backfill, ms")
	fl.Int64Var(&f.liveMS, "max-wait-live-ms", 0, "budget for waiting on the live tier, ms")
	fl.Int64Var(&f.gap, "max-sync-gap-bars", 0, "most missing bars to backfill inline before the SLA is violated")
	fl.Float64Var(&f.minCoverage, "min-coverage", 0, "coverage ratio below which the answer is held (0–1)")
	fl.Float64Var(&f.maxLag, "max-lag-seconds", 0, "staleness above which the answer is held")
	fl.StringVar(&f.onViolation, "on-violation", "", "fail_fast | partial_fill | hold")
	fl.StringVar(&f.conformance, "conformance", "default", "conformance preset deciding which findings block: default, strict-blocking, permissive-dev")
	fl.BoolVar(&f.fingerprint, "fingerprint", false, "compute dataset_fingerprint for the response")
	fl.BoolVar(&f.includeForming, "include-forming", false, "append the bar still forming (live tier), flagged in metadata")
	fl.StringVar(&f.worldID, "world-id", "", "world the request belongs to")
	fl.StringVar(&f.domain, "execution-domain", "", "backtest | dryrun | live | shadow (or an alias)")
	fl.StringVar(&f.asOf, "as-of", "", "instant the data is fixed at: epoch seconds or RFC 3339 (required for backtest/dryrun)")
}

// apply sets the request's SLA and domain fields from the flags that were given.
func (f *requestFlags) apply(cmd *cobra.Command, req *seamless.Request) error {
	var policy *seamless.SLAPolicy
	if f.sla != "" && f.sla != "none" {
		p, err := seamless.SLAPreset(f.sla)
		if err != nil {
			return err
		}
		policy = &p
	}
	override := func(name string, set func(p *seamless.SLAPolicy)) {
		if cmd.Flags().Changed(name) {
			if policy == nil {
				policy = &seamless.SLAPolicy{}
			}
			set(policy)
		}
	}
	override("total-deadline-ms", func(p *seamless.SLAPolicy) { p.TotalDeadlineMS = f.totalMS })
	override("max-wait-storage-ms", func(p *seamless.SLAPolicy) { p.MaxWaitStorageMS = f.storageMS })
	override("max-wait-backfill-ms", func(p *seamless.SLAPolicy) { p.MaxWaitBackfillMS = f.backfillMS })
	override("max-wait-live-ms", func(p *seamless.SLAPolicy) { p.MaxWaitLiveMS = f.liveMS })
	override("max-sync-gap-bars", func(p *seamless.SLAPolicy) { p.MaxSyncGapBars = f.gap })
	override("min-coverage", func(p *seamless.SLAPolicy) { p.MinCoverage = f.minCoverage })
	override("max-lag-seconds", func(p *seamless.SLAPolicy) { p.MaxLagSeconds = f.maxLag })
	if cmd.Flags().Changed("on-violation") {
		v, err := seamless.ParseOnViolation(f.onViolation)
		if err != nil {
			return &seamless.RequestError{Field: "on-violation", Message: err.Error()}
		}
		override("on-violation", func(p *seamless.SLAPolicy) { p.OnViolation = v })
	}
	if policy != nil {
		if err := policy.Validate(); err != nil {
			return &seamless.RequestError{Field: "sla", Message: err.Error()}
		}
	}
	req.SLA = policy
	req.Conformance, req.Fingerprint, req.IncludeForming = f.conformance, f.fingerprint, f.includeForming
	if req.Conformance == "default" {
		req.Conformance = ""
	}
	req.WorldID, req.ExecutionDomain = f.worldID, f.domain
	if f.asOf != "" {
		t, err := grid.ParseTime(f.asOf)
		if err != nil {
			return &seamless.RequestError{Field: "as-of", Message: err.Error()}
		}
		req.AsOf = time.Unix(t, 0).UTC()
	}
	return nil
}

func newPresetsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "presets",
		Short: "List the conformance presets (what blocks) and the SLA presets (budgets)",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			for _, name := range []string{conformance.DefaultPreset, conformance.StrictPreset, conformance.PermissivePreset} {
				pol, _ := conformance.PolicyByName(name)
				blocks := strings.Join(pol.Block, ", ")
				switch {
				case pol.All:
					blocks = "every finding"
				case blocks == "":
					blocks = "nothing"
				}
				fmt.Fprintf(g.stdout, "conformance %-18s blocks on %s\n", name, blocks)
			}
			for _, name := range seamless.SLAPresetNames() {
				p, _ := seamless.SLAPreset(name)
				fmt.Fprintf(g.stdout, "sla %-18s total %6dms  storage %5dms  backfill %6dms  live %5dms  sync_gap %d bars  min_coverage %.2f  max_lag %gs  on_violation %s\n",
					name, p.TotalDeadlineMS, p.MaxWaitStorageMS, p.MaxWaitBackfillMS, p.MaxWaitLiveMS, p.MaxSyncGapBars, p.MinCoverage, p.MaxLagSeconds, p.OnViolation)
			}
			return nil
		},
	}
}
