// Package conformance is the ConformancePipeline of SPEC §3: it checks a frame against
// its declared schema and the interval grid, returns the normalised frame (cast to the
// schema, sorted, one row per ts, grid-aligned, inside the range) and a Report of what
// it found. A Policy decides which findings block a response; blocking is the caller's
// decision, Run itself only reports.
//
// Run never modifies its input. When the input is already clean the output is the input
// frame itself (no copy); otherwise the output may still share column memory with the
// input, so neither must be modified while the other is in use.
//
// # Stages
//
//  1. Timestamps: integer ts in ms, µs or ns are converted to seconds (one unit per
//     frame, inferred from the magnitude by csvio.InferUnit); textual ts (Input.TSText:
//     integers or RFC 3339, a space for the 'T' and a missing zone allowed) are parsed.
//  2. Rows: rows outside Options.Range and rows off the Options.Interval grid are
//     dropped; the rest are stably sorted by ts and, for each ts, the last row in input
//     order is kept.
//  3. Schema rollup: the output has exactly the columns of Options.Schema, in schema
//     order. Columns of another type are cast; missing columns and cells that cannot be
//     cast are filled with NaN (float64) or the zero value (other types). An empty
//     Schema keeps the input columns as they are.
//  4. Value checks, on the output rows (so that counts describe what a consumer is
//     served, and a bad row replaced by its duplicate does not block): non-finite
//     values, enumerations, bar sanity, tick and quote rules.
//  5. Gaps: missing grid bars between the output rows and, when a Range is given,
//     between the range bounds and the first and last row.
//
// # Flags
//
// Flag names are a stable contract (SPEC §3; the ones marked * are Seamless's names for
// the reference's tick and quote rules and for findings it leaves unnamed). A count is
// of rows unless stated; Samples holds up to MaxSamples offending ts per flag (epoch
// seconds, as in the output).
//
//	schema rollup
//	  missing_column          schema columns absent from the input (filled; no samples)
//	  dtype_cast              columns cast to their declared type (no samples)
//	  dtype_mismatch          columns with values that cannot be cast (those cells filled;
//	                          samples: their ts)
//	  invalid_enum            string values outside Options.Enums
//	non-finite scan
//	  non_finite              NaN and ±Inf values in float64 columns
//	temporal rollup
//	  ts_cast                 rows whose integer ts was converted from ms, µs or ns
//	  ts_timezone_normalized  rows whose textual ts had a non-UTC offset, or no zone
//	                          (taken as UTC)
//	  invalid_timestamp       rows whose ts cannot be read or is not a whole second;
//	                          dropped (samples: the raw integer values; textual cells
//	                          are quoted in a warning instead)
//	  out_of_range_ts *       rows outside Options.Range; dropped
//	  misaligned_ts           rows with ts % Interval != 0; dropped
//	  unsorted_ts *           rows whose ts is below the previous kept row's; sorted
//	  duplicate_ts            rows sharing their ts with another row, every row
//	                          involved; the last in input order is kept
//	  gap                     missing grid bars (samples: the first bar of each gap)
//	  known_gap *             the missing bars of gap that lie in Options.KnownGaps
//	bar sanity
//	  ohlc_inconsistent       high < max(open, close), low > min(open, close) or high < low
//	  negative_volume         volume < 0
//	tick and quote rules
//	  non_positive_price *    price <= 0 (trades); bid <= 0 or ask <= 0 (quotes)
//	  non_positive_size *     size <= 0 (trades); bid_size <= 0 or ask_size <= 0 (quotes)
//	  crossed_quote *         bid >= ask
//	  wide_spread *           ask − bid > Options.WideSpread × mid (default 10 %)
//
// Rows that a flag does not say are dropped stay in the output: findings are reported,
// and a Policy decides whether they block.
//
// The value rules apply to whichever float64 columns of those names the output has:
// bar sanity to open/high/low/close and volume (the OHLCV schema), the tick rule to
// price/size (trades), the quote rule to bid/ask/bid_size/ask_size (quotes). A
// non-finite value trips no other rule: it is counted once, as non_finite. Empty
// strings are missing values: they are not checked against an enumeration, and cast to
// float64 they become NaN (non_finite).
//
// # Policies
//
// DefaultPolicy blocks on the flags that mean corrupt data (missing_column,
// dtype_mismatch, invalid_timestamp, non_finite, ohlc_inconsistent, negative_volume,
// invalid_enum); StrictPolicy (strict-blocking) on every flag and warning, as the
// reference does; PermissivePolicy (permissive-dev) on nothing. Policy.Check turns a
// blocking report into a *PipelineError (code conformance_blocked).
//
// Interval 0 switches the grid off (no misaligned_ts, no gap), e.g. for tick data.
//
// # Gaps and coverage
//
// A gap is any missing grid bar, including real market gaps (exchange maintenance).
// Options.KnownGaps carries the ranges the caller knows to be covered-but-empty; the
// bars of a gap inside them are counted in gap as well as in known_gap, so the provider
// can compute coverage_ratio as (rows + known_gap) ÷ expected bars.
package conformance
