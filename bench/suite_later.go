package bench

import "context"

// runKafkaScenarios and runReloadScenario are filled in with the Kafka
// triggers and zero-downtime reloads.
func runKafkaScenarios(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error { return nil }
func runReloadScenario(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error { return nil }
