package main

import (
	"fmt"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/gateway"
	"github.com/sluicehq/sluice/invoker/filter"
	"github.com/sluicehq/sluice/plugins"
)

// compileFilter returns the match function of a trigger's filter, or nil
// when it has none, so that unfiltered triggers pay nothing.
func compileFilter(cfg *config.File, t *config.Trigger) (func(*plugins.Event) bool, error) {
	if len(t.Filter) == 0 {
		return nil, nil
	}
	p, err := filter.Compile(t.Filter)
	if err != nil {
		return nil, fmt.Errorf("%s: filter: %w", cfg.At(t.FilterPos), err)
	}
	if p == nil {
		return nil, nil
	}
	return p.Match, nil
}

// addHandlers registers what the gateway serves besides function routes:
// the storage webhooks and the Lambda invoke API.
func (s *server) addHandlers() error {
	cfg := s.cfg
	for i := range cfg.Triggers {
		t := &cfg.Triggers[i]
		if t.Kind != config.KindStorage {
			continue
		}
		match, err := compileFilter(cfg, t)
		if err != nil {
			return err
		}
		r := gateway.StorageRoute{
			Path:       t.Storage.Path,
			Function:   s.byFn[t.Function],
			Token:      t.Storage.Token,
			Mode:       gateway.Mode(t.Storage.Mode),
			AsyncTopic: t.Storage.AsyncTopic,
			Filter:     match,
		}
		if r.AsyncTopic != "" {
			r.Publisher = s.kafka.publisher
		}
		if err := s.gw.HandleStorage(r); err != nil {
			return fmt.Errorf("%s: %w", cfg.At(t.Pos), err)
		}
	}
	api, err := gateway.NewLambdaAPI(s.byFn, gateway.LambdaAPIConfig{}, s.tap)
	if err != nil {
		return err
	}
	return api.Register(s.gw)
}
