// Package stream holds the parts of streaming subscriptions that do not depend on where
// bars come from: the resume cursor, the seam between bars already delivered and bars
// still to come, and the hub that fans one upstream per series out to many bounded
// subscriber queues. Package seamless wires them to Provider.Fetch (history and
// repairs) and Provider.OnIngest (bars as they are written) in Provider.Subscribe.
//
// # The seam
//
// A subscription's state is one number, the cursor: the ts of the next bar it has not
// delivered. Every bar before it was delivered exactly once; every bar from it on is
// still to come. Writes that reach the store are offered to the seam (Seam.Offer):
// those ending at or before the cursor are dropped (already delivered), those covering
// it are delivered from the cursor on, and those starting after it reveal a hole,
// which the caller repairs (fetches through the backfilling request path) before it
// delivers anything newer. The cursor only moves forward, and only over ranges that
// were delivered, so resuming from it can neither skip nor repeat a bar.
//
// # Fan-out
//
// A Hub keeps one upstream per key (series) while anyone is subscribed to it, and
// gives each subscriber a bounded inbox. Publish never blocks: a subscriber whose
// inbox is full is marked lagged instead, and catches up from storage, so neither the
// writer that publishes nor the other subscribers ever wait for a slow one.
package stream
