package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Results of sluice_reloads_total.
const (
	reloadOK      = "ok"
	reloadFailedR = "failed"
	reloadRefused = "refused"
)

func reloadCounter(result string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`sluice_reloads_total{result="` + result + `"}`)
}

// abortGrace is how long a new process told to stop mid-reload (the old
// one got SIGTERM) has to exit before it is killed.
const abortGrace = 15 * time.Second

// reloader runs this process's reloads: on SIGHUP it starts the next
// generation through tableflip and records the attempt; when that one is
// ready, this process drains and exits. Its methods run on the serve loop,
// except awaitParent.
type reloader struct {
	s      *server
	gen    int
	status string // the status file; "" without a pidfile

	results  chan reloadResult
	running  bool
	attempt  int
	refusals int
	cur      reloadStatus
	hoPath   string // the attempt's handoff file

	// parentGone is set once the process this one replaced has exited (at
	// once for a first process): tableflip refuses to upgrade before.
	parentGone atomic.Bool
}

type reloadResult struct {
	err  error
	took time.Duration
}

func newReloader(s *server, gen int) *reloader {
	r := &reloader{s: s, gen: gen, status: reloadStatusPath(s.cfg.Server.Pidfile), results: make(chan reloadResult, 1)}
	ho := s.handoff
	if ho == nil {
		r.parentGone.Store(true)
		return r
	}
	// The counters go on from the process this one replaces, so that the
	// gateway's reloads add up across generations; this one counts itself.
	for _, res := range []string{reloadOK, reloadFailedR, reloadRefused} {
		reloadCounter(res).Add(int(ho.Reloads[res]))
	}
	reloadCounter(reloadOK).Inc()
	go r.awaitParent()
	return r
}

// awaitParent waits for the process this one replaced to exit, records
// it, then starts what had to wait for it: the embedded broker.
func (r *reloader) awaitParent() {
	ho := r.s.handoff
	err := r.s.upg.WaitForParent(context.Background())
	exited := time.Since(ho.Started)
	ev := r.s.log.Log()
	if err != nil {
		ev = r.s.log.Warn().Err(err)
	}
	ev.Int("previous_pid", ho.ParentPID).Dur("exited_ms", exited).Msg("reload: previous process exited")
	// Before the status says done: whoever reads done may reload at once.
	r.parentGone.Store(true)
	if st := readReloadStatus(ho.StatusFile); st != nil && st.PID == ho.ParentPID && st.NewPID == os.Getpid() {
		st.State = reloadDone
		st.ExitedMS = ms(exited)
		if err := writeJSONFile(ho.StatusFile, st); err != nil {
			r.s.log.Warn().Err(err).Msg("cannot write the reload status file")
		}
	}
	r.s.kafka.startDeferred(r.s)
}

// start begins a reload, or refuses one while another is not over.
func (r *reloader) start() {
	switch {
	case r.running:
		r.refuse("a reload is already in progress")
		return
	case !r.parentGone.Load():
		r.refuse(fmt.Sprintf("the previous generation %d is still draining", r.gen-1))
		return
	}
	r.running = true
	r.attempt++
	now := time.Now()
	r.cur = reloadStatus{State: reloadStarting, PID: os.Getpid(), Generation: r.gen, Attempt: r.attempt, NewGeneration: r.gen + 1, Started: now}
	r.writeStatus()
	ho := &handoff{
		ParentPID: os.Getpid(), Generation: r.gen, Started: now, StatusFile: r.status,
		Reloads:      map[string]uint64{},
		EmbeddedAddr: r.s.kafka.embeddedAddr(),
	}
	for _, res := range []string{reloadOK, reloadFailedR, reloadRefused} {
		ho.Reloads[res] = reloadCounter(res).Get()
	}
	r.hoPath = ""
	if f, err := os.CreateTemp("", "sluice-reload-*.json"); err != nil {
		r.s.log.Warn().Err(err).Msg("reload: cannot create the handoff file; the new process's errors will be in its log only")
	} else {
		_ = f.Close()
		r.hoPath = f.Name()
		if err := writeJSONFile(r.hoPath, ho); err != nil {
			r.s.log.Warn().Err(err).Msg("reload: cannot write the handoff file")
		}
	}
	r.s.log.Log().Int("next_generation", r.gen+1).Int("attempt", r.attempt).Msg("reload: starting the new process")
	go func() {
		// tableflip starts the new process with this process's environment.
		_ = os.Setenv(generationEnv, strconv.Itoa(r.gen+1))
		if r.hoPath != "" {
			_ = os.Setenv(reloadEnv, r.hoPath)
		}
		err := r.s.upg.Upgrade()
		for try := 0; err != nil && err.Error() == "parent hasn't exited" && try < 100; try++ {
			// tableflip notices its parent's exit on a goroutine of its own,
			// a moment after WaitForParent returned (parentGone is set).
			time.Sleep(10 * time.Millisecond)
			err = r.s.upg.Upgrade()
		}
		_ = os.Setenv(generationEnv, strconv.Itoa(r.gen))
		_ = os.Unsetenv(reloadEnv)
		r.results <- reloadResult{err: err, took: time.Since(now)}
	}()
}

// refuse turns down a SIGHUP, and records it for `sluice reload`.
func (r *reloader) refuse(why string) {
	reloadCounter(reloadRefused).Inc()
	r.s.log.Warn().Str("reason", why).Msg("reload refused")
	r.refusals++
	if r.status == "" {
		return
	}
	rf := reloadRefusal{PID: os.Getpid(), Count: r.refusals, Reason: why, Time: time.Now()}
	if err := writeJSONFile(reloadRefusedPath(r.status), &rf); err != nil {
		r.s.log.Warn().Err(err).Msg("cannot write the reload refusal file")
	}
}

// finish records the outcome of the attempt in flight. aborted is the
// signal that made this process stop it, if any.
func (r *reloader) finish(res reloadResult, aborted os.Signal) {
	r.running = false
	var ho handoff
	if r.hoPath != "" {
		_ = readJSONFile(r.hoPath, &ho)
		_ = os.Remove(r.hoPath)
	}
	r.cur.NewPID = ho.PID
	if res.err == nil {
		reloadCounter(reloadOK).Inc()
		r.cur.State = reloadDraining
		r.cur.ReadyMS = ms(res.took)
		r.writeStatus()
		r.s.log.Log().Int("next_generation", r.gen+1).Int("new_pid", ho.PID).Dur("ready_ms", res.took).Msg("reload: new process ready")
		return
	}
	reloadCounter(reloadFailedR).Inc()
	why := res.err.Error() // tableflip's: "child pid=N exited: exit status 2", "new child pid=N timed out", ...
	switch {
	case ho.Error != "":
	case strings.Contains(why, "exited"):
		why = "the new process exited before it was ready (" + why + "); its output is in the gateway's log"
	case strings.Contains(why, "timed out"):
		why = fmt.Sprintf("the new process was not ready within %s and was killed (%s)", upgradeTimeout+upgradeKillGrace, why)
	}
	if ho.Error != "" {
		why = ho.Error + "\n(the new process, pid " + strconv.Itoa(ho.PID) + ", exited with code " + strconv.Itoa(ho.Code) + ")"
	}
	if aborted != nil {
		r.cur.Aborted = aborted.String()
	}
	r.cur.State = reloadFailed
	r.cur.Error = why
	r.cur.Code = ho.Code
	r.writeStatus()
	ev := r.s.log.Error()
	if aborted != nil {
		ev = r.s.log.Warn()
	}
	msg := "reload failed: still serving"
	if aborted != nil {
		msg = "reload aborted: stopping, the new process too"
	}
	ev.Str("error", why).Int("next_generation", r.gen+1).Dur("took_ms", res.took).Msg(msg)
}

// abort stops the attempt in flight, if any, because this process was
// told to stop: the new process gets the same signal (once ready it drains
// and exits; still starting, it stops starting), so that the gateway stops
// as a whole.
func (r *reloader) abort(sig os.Signal) {
	if !r.running {
		return
	}
	var ho handoff
	if r.hoPath != "" {
		_ = readJSONFile(r.hoPath, &ho)
	}
	if ho.PID > 0 {
		_ = syscall.Kill(ho.PID, syscall.SIGTERM)
	} else {
		// It has not even recorded its pid: it has started nothing yet.
		r.s.upg.Stop()
	}
	t := time.NewTimer(abortGrace)
	defer t.Stop()
	select {
	case res := <-r.results:
		r.finish(res, sig)
		return
	case <-t.C:
	}
	r.s.upg.Stop() // kills it
	r.finish(<-r.results, sig)
}

// handOver is called once tableflip has handed over to a new process:
// the attempt's result is recorded before this process drains.
func (r *reloader) handOver() {
	if r.running {
		r.finish(<-r.results, nil)
	}
	r.s.log.Log().Int("next_generation", r.gen+1).Msg("reload: draining")
}

// drained records that this process, replaced, has drained and exits.
func (r *reloader) drained(took time.Duration) {
	r.cur.State = reloadDrained
	r.cur.DrainedMS = ms(took)
	r.writeStatus()
	r.s.log.Log().Dur("drained_ms", took).Dur("since_signal_ms", time.Since(r.cur.Started)).Msg("reload: old process drained, exiting")
}

func (r *reloader) writeStatus() {
	if r.status == "" {
		return
	}
	if err := writeJSONFile(r.status, &r.cur); err != nil {
		r.s.log.Warn().Err(err).Str("file", r.status).Msg("cannot write the reload status file")
	}
}
