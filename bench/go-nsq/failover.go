package main

// Cases j and j0: failover over several nsqd with go-nsq.
//
// go-nsq's Producer is 1:1 with an nsqd and has no failover of its own, so the caller keeps one
// Producer per nsqd and, when a publish fails, publishes the message again on the next
// producer. Each message starts on the next producer in turn (round-robin, as the Rust pool in
// the same case), and is tried on each producer at most once. -callers goroutines publish -n
// messages between them, each waiting for its ack (as case b). In j, when the n/3-th ack
// arrives the nsqd at -addrs[-kill-index] is killed with SIGKILL (pid -kill-pid); the suite
// restarts it 5 s later. j0 is the same run without the kill.
//
// Case l is j with a timeout of 2 s on each publish (go-nsq has none: the caller stops waiting
// and tries the next producer) and, instead of the kill, the nsqd at -addrs[-kill-index] stopped
// with SIGSTOP for 6 s, then continued with SIGCONT. Its connection stays open, so go-nsq sees
// no error: only the caller's timeout moves a message on, and the stopped nsqd may store it
// once continued, so a message acked after a timeout is counted as resent too.
//
// The outcome of each message is counted: acked, or, when every producer failed, by the last
// error. go-nsq answers a publish that was in flight when its connection dropped with
// ErrNotConnected, the same error as a publish made while the producer is reconnecting, so the
// caller cannot tell whether nsqd stored it; a message acked after such an error is counted as
// resent (it may be stored twice). A failed dial means the message was not sent.

import (
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nsqio/go-nsq"
)

// Case l: how long the node is stopped, and each publish's timeout.
const (
	freezeFor      = 6 * time.Second
	publishTimeout = 2 * time.Second
)

var errTimedOut = errors.New("no answer within the publish timeout")

// publishWithin publishes body and waits at most timeout for the answer.
func publishWithin(p *nsq.Producer, topic string, body []byte, timeout time.Duration) error {
	done := make(chan *nsq.ProducerTransaction, 1)
	go func() {
		if err := p.PublishAsync(topic, body, done); err != nil {
			done <- &nsq.ProducerTransaction{Error: err}
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case t := <-done:
		return t.Error
	case <-timer.C:
		return errTimedOut
	}
}

type outcomes struct {
	Unknown       uint64            `json:"unknown"`
	NotSent       uint64            `json:"not_sent"`
	Other         uint64            `json:"other"`
	Resent        uint64            `json:"resent"`
	AttemptErrors map[string]uint64 `json:"attempt_errors"`
}

// callerRun is what one caller of a failover run saw.
type callerRun struct {
	t         tally
	out       outcomes
	acksPerMs []uint32
}

func (c *callerRun) ackAt(sinceStart time.Duration) {
	ms := int(sinceStart / time.Millisecond)
	if ms >= len(c.acksPerMs) {
		grown := make([]uint32, ms+1000)
		copy(grown, c.acksPerMs)
		c.acksPerMs = grown
	}
	c.acksPerMs[ms]++
}

func (c *callerRun) attemptError(kind string) {
	if c.out.AttemptErrors == nil {
		c.out.AttemptErrors = map[string]uint64{}
	}
	c.out.AttemptErrors[kind]++
}

// errorKind sorts a failed publish: "not connected" (in flight when the connection dropped, or
// made while reconnecting: go-nsq does not say which), "dial" (the connection could not be
// made: not sent) or another error.
func errorKind(err error) string {
	var op *net.OpError
	switch {
	case errors.Is(err, nsq.ErrNotConnected):
		return "not connected"
	case errors.Is(err, errTimedOut):
		return "timed out"
	case errors.As(err, &op) && op.Op == "dial":
		return "dial"
	case errors.Is(err, nsq.ErrStopped):
		return "stopped"
	default:
		return "other"
	}
}

func failover(o options) (result, error) {
	res := result{Client: "go-nsq", Case: o.bench, N: o.n}
	var addrs []string
	for _, a := range strings.Split(o.addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	if len(addrs) == 0 {
		addrs = []string{o.addr}
	}
	if o.killIndex < 0 || o.killIndex >= len(addrs) {
		return res, fmt.Errorf("-kill-index %d is not among the %d -addrs", o.killIndex, len(addrs))
	}
	kill := o.bench == "j"
	freeze := o.bench == "l"
	if (kill || freeze) && o.killPid <= 0 {
		return res, fmt.Errorf("case %s needs -kill-pid, the pid of the nsqd at -kill-index", o.bench)
	}

	producers := make([]*nsq.Producer, len(addrs))
	for i, addr := range addrs {
		p, err := nsq.NewProducer(addr, nsq.NewConfig())
		if err != nil {
			return res, err
		}
		p.SetLogger(nil, nsq.LogLevelError)
		// go-nsq connects lazily; connect before the clock starts.
		if err := p.Ping(); err != nil {
			return res, fmt.Errorf("connecting to %s: %w", addr, err)
		}
		producers[i] = p
	}

	body := make([]byte, o.size)
	for i := range body {
		body[i] = 'x'
	}
	var deadline time.Time
	if o.timeLimit > 0 {
		deadline = time.Now().Add(o.timeLimit)
	}
	third := uint64(o.n / 3)
	if third == 0 {
		third = 1
	}
	nodeAcked := make([]atomic.Uint64, len(addrs))
	var acked, next atomic.Uint64
	// Nanoseconds from the start to the kill, and to the first ack by the killed node more than
	// a second after it (acks the nsqd sent before it died may still be read for a moment; one
	// a second later comes from the restarted nsqd); 0 until then.
	var killNanos, backNanos atomic.Int64

	// The kill, in a goroutine of its own started by the caller whose ack is the third-th.
	var killWg sync.WaitGroup
	var killAt time.Duration
	var killErr error
	var nodeAckedAtKill []uint64

	runs := make([]callerRun, o.callers)
	var wg sync.WaitGroup
	cpuStart := cpuTime()
	start := time.Now()
	for c := 0; c < o.callers; c++ {
		share := o.n / o.callers
		if c < o.n%o.callers {
			share++
		}
		wg.Add(1)
		go func(run *callerRun, share int) {
			defer wg.Done()
			run.t.latencies = make([]time.Duration, 0, share)
			run.acksPerMs = make([]uint32, 16384)
			for i := 0; i < share; i++ {
				if expired(deadline) {
					run.t.truncated = true
					break
				}
				first := int((next.Add(1) - 1) % uint64(len(producers)))
				began := time.Now()
				var err error
				var maybeWritten bool
				for attempt := 0; attempt < len(producers); attempt++ {
					node := (first + attempt) % len(producers)
					if freeze {
						err = publishWithin(producers[node], o.topic, body, publishTimeout)
					} else {
						err = producers[node].Publish(o.topic, body)
					}
					if err == nil {
						now := time.Now()
						run.ackAt(now.Sub(start))
						nodeAcked[node].Add(1)
						if kill && node == o.killIndex && backNanos.Load() == 0 {
							if k := killNanos.Load(); k > 0 && int64(now.Sub(start))-k > int64(time.Second) {
								backNanos.CompareAndSwap(0, int64(now.Sub(start)))
							}
						}
						if maybeWritten {
							run.out.Resent++
						}
						if acked.Add(1) == third {
							killWg.Add(1)
							go func() {
								defer killWg.Done()
								if kill {
									killErr = syscall.Kill(o.killPid, syscall.SIGKILL)
								}
								if freeze {
									killErr = syscall.Kill(o.killPid, syscall.SIGSTOP)
								}
								killAt = time.Since(start)
								killNanos.Store(int64(killAt))
								nodeAckedAtKill = make([]uint64, len(nodeAcked))
								for i := range nodeAcked {
									nodeAckedAtKill[i] = nodeAcked[i].Load()
								}
								if freeze {
									// Continued after freezeFor, whether or not the run is over.
									time.Sleep(freezeFor)
									if err := syscall.Kill(o.killPid, syscall.SIGCONT); err != nil && killErr == nil {
										killErr = err
									}
								}
							}()
						}
						break
					}
					kind := errorKind(err)
					run.attemptError(kind)
					if kind == "not connected" || kind == "timed out" {
						maybeWritten = true
					}
				}
				run.t.latencies = append(run.t.latencies, time.Since(began))
				if err != nil {
					switch errorKind(err) {
					case "not connected", "timed out":
						run.out.Unknown++
					case "dial":
						run.out.NotSent++
					default:
						run.out.Other++
					}
				}
				run.t.record(err, 1)
			}
		}(&runs[c], share)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpuStart
	killWg.Wait()
	if killErr != nil {
		return res, fmt.Errorf("signalling nsqd %d: %w", o.killPid, killErr)
	}
	final := make([]uint64, len(nodeAcked))
	for i := range nodeAcked {
		final[i] = nodeAcked[i].Load()
	}
	for _, p := range producers {
		p.Stop()
	}

	var t tally
	out := outcomes{AttemptErrors: map[string]uint64{}}
	var acks []uint32
	for _, run := range runs {
		t.merge(run.t)
		out.Unknown += run.out.Unknown
		out.NotSent += run.out.NotSent
		out.Other += run.out.Other
		out.Resent += run.out.Resent
		for kind, n := range run.out.AttemptErrors {
			out.AttemptErrors[kind] += n
		}
		if len(acks) < len(run.acksPerMs) {
			grown := make([]uint32, len(run.acksPerMs))
			copy(grown, acks)
			acks = grown
		}
		for i, n := range run.acksPerMs {
			acks[i] += n
		}
	}
	used := int(elapsed/time.Millisecond) + 1
	for last := len(acks) - 1; last >= used; last-- {
		if acks[last] != 0 {
			used = last + 1
			break
		}
	}
	if used < len(acks) {
		acks = acks[:used]
	}

	res.Seconds = elapsed.Seconds()
	res.Acked = t.acked
	res.Errors = t.errors
	res.Truncated = t.truncated
	res.FirstError = t.firstError
	res.MsgsPerSec = float64(t.acked) / elapsed.Seconds()
	res.CPUSeconds = cpu.Seconds()
	res.Outcomes = &out
	res.AcksPerMs = acks
	res.KillIndex = &o.killIndex
	res.NodeAcked = final
	if nodeAckedAtKill != nil {
		at := killAt.Seconds()
		res.KillAtS = &at
		res.Killed = kill || freeze
		res.NodeAckedAtKill = nodeAckedAtKill
		if back := backNanos.Load(); back > 0 {
			s := time.Duration(back).Seconds()
			res.BackAtS = &s
		}
	}
	if len(t.latencies) > 0 {
		sortDurations(t.latencies)
		res.P50us = percentile(t.latencies, 0.50)
		res.P99us = percentile(t.latencies, 0.99)
		res.P999us = percentile(t.latencies, 0.999)
	}
	return res, nil
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
