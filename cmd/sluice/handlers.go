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
	ia := cfg.Server.InvokeAPI
	if !ia.Enabled {
		s.log.Info().Str("listener", "http").Msg("invoke API off: server.listen is not a loopback address and server.invoke_api is not set")
		return nil
	}
	api, err := gateway.NewLambdaAPI(s.byFn, gateway.LambdaAPIConfig{
		Region:      functionRegion(cfg),
		ScopeRegion: ia.Region,
		Auth:        ia.Auth,
		Keys:        ia.Keys,
		Token:       ia.Token,
		AdminToken:  cfg.Server.AdminToken,
		Functions:   functionInfos(cfg),
	}, s.tap)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.Where("server.invoke_api"), err)
	}
	s.log.Info().Str("listener", "http").Str("auth", ia.Auth).Msg("invoke API on")
	return api.Register(s.gw)
}

// functionInfos describes every function to the invoke API's management
// reads: what the config says, with the invoker's defaults applied.
func functionInfos(cfg *config.File) map[string]gateway.FunctionInfo {
	m := make(map[string]gateway.FunctionInfo, len(cfg.Functions))
	for i := range cfg.Functions {
		fn := &cfg.Functions[i]
		handler := fn.Handler
		if handler == "" {
			handler = fn.Env["_HANDLER"]
		}
		m[fn.Name] = gateway.FunctionInfo{
			Runtime:  fn.RuntimeName(),
			Handler:  handler,
			MemoryMB: int(fn.Memory >> 20),
			Timeout:  effectiveTimeout(fn.Invoker()),
			Env:      fn.Env,
		}
	}
	return m
}
