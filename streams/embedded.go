package streams

import (
	"fmt"
	"net"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Defaults of the embedded broker.
const (
	DefaultEmbeddedAddr       = "127.0.0.1:9092"
	DefaultEmbeddedPartitions = 8
)

// Embedded is an in-process, in-memory Kafka-compatible broker (franz-go's
// kfake) for development: `sluice serve` on a machine with no Kafka. It
// speaks the Kafka protocol to any client (franz-go, librdkafka's kcat,
// the Java client), creates topics on first use, and keeps nothing across
// restarts. It is not for production: point kafka.brokers at a real Kafka
// or Redpanda cluster instead.
type Embedded struct {
	c    *kfake.Cluster
	addr string
}

// StartEmbedded serves a one-broker cluster on addr (DefaultEmbeddedAddr
// when empty; port 0 picks a free port, see Addr). Topics that a client
// asks for are created with partitions partitions (DefaultEmbeddedPartitions
// when below 1). A wildcard host (":9092", "0.0.0.0:9092") is listened on as
// given but advertised to clients as 127.0.0.1. logger defaults to a
// disabled one. It returns the listen error, such as an address in use.
func StartEmbedded(addr string, partitions int, logger *zerolog.Logger) (*Embedded, error) {
	if addr == "" {
		addr = DefaultEmbeddedAddr
	}
	if partitions < 1 {
		partitions = DefaultEmbeddedPartitions
	}
	log := zerolog.Nop()
	if logger != nil {
		log = *logger
	}
	log = log.With().Str("component", "embedded-kafka").Logger()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(partitions),
		kfake.WithLogger(kfakeLogger{log: log}),
		// kfake listens on 127.0.0.1 by default; serve the configured
		// address instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			ln, err := net.Listen(network, addr)
			if err != nil {
				return nil, err
			}
			return advertised(ln), nil
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("cannot start the embedded Kafka broker on %s: %w", addr, err)
	}
	e := &Embedded{c: c, addr: c.ListenAddrs()[0]}
	log.Info().Str("addr", e.addr).Int("partitions", partitions).Msg("embedded Kafka broker listening (in memory, for development)")
	return e, nil
}

// Addr returns the address clients connect to, with the bound port.
func (e *Embedded) Addr() string { return e.addr }

// Cluster returns the kfake cluster, for tests that inject faults.
func (e *Embedded) Cluster() *kfake.Cluster { return e.c }

// Close stops the broker and drops everything it held.
func (e *Embedded) Close() { e.c.Close() }

// advertised makes a listener on a wildcard address report 127.0.0.1, as
// kfake advertises its listener's address to clients in metadata.
func advertised(ln net.Listener) net.Listener {
	a, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !a.IP.IsUnspecified() {
		return ln
	}
	return &advertisedListener{Listener: ln, addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.Port}}
}

type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l *advertisedListener) Addr() net.Addr { return l.addr }
