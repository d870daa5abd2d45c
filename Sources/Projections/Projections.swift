// Projections: per-peer route views, read models and the outbox (issue 5). Filled in by the projections work.
