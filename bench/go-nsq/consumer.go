package main

// Cases m and n: go-nsq's Consumer reading a topic that the suite filled beforehand, from one
// nsqd (m, -addr) or three (n, -addrs), with -max-in-flight as the Rust consumer and one
// handler that does nothing, so go-nsq finishes (FIN) each message when it returns.
//
// The first phase measures throughput: the clock starts before the consumer connects and stops
// when the handler has seen -n messages. CPU time and the peak resident set (VmHWM) are taken
// then, and the CPU time of the nsqd processes -nsqd-pids over the same time. The channel holds -filled messages, a few more than -n, so that the last timed ones do
// not wait for nsqd's output buffer timer; the handler reads the rest untimed. The second phase measures latency: with the consumer still connected, the pacer
// (`nsq-bench pace`, -pacer) publishes -latency-n messages at -latency-rate per second, each
// body starting with `t=<unix nanoseconds>;`, the moment it was written; the handler records
// now minus that moment.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nsqio/go-nsq"
)

// stampPrefix starts the body of every message of the latency phase.
var stampPrefix = []byte("t=")

// stampedAt reads the publish time from a body written by the pacer.
func stampedAt(body []byte) (time.Time, bool) {
	if !bytes.HasPrefix(body, stampPrefix) {
		return time.Time{}, false
	}
	rest := body[len(stampPrefix):]
	end := bytes.IndexByte(rest, ';')
	if end < 0 {
		return time.Time{}, false
	}
	nanos, err := strconv.ParseInt(string(rest[:end]), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, nanos), true
}

// consumerHandler counts the messages of the first phase and times those of the second.
type consumerHandler struct {
	n         int64
	seen      atomic.Int64
	timedDone chan struct{}
	filled    int64
	allRead   chan struct{}
	latencyN  int64
	timed     atomic.Int64
	latencies []time.Duration
	allTimed  chan struct{}
}

func (h *consumerHandler) HandleMessage(m *nsq.Message) error {
	count := h.seen.Add(1)
	if count == h.n {
		close(h.timedDone)
	}
	if count == h.filled {
		close(h.allRead)
	}
	if count <= h.filled {
		return nil
	}
	// go-nsq runs one handler goroutine per AddHandler: the slice has one writer.
	if at, ok := stampedAt(m.Body); ok {
		h.latencies = append(h.latencies, time.Since(at))
		if h.timed.Add(1) == h.latencyN {
			close(h.allTimed)
		}
	}
	return nil
}

func consume(o options) (result, error) {
	res := result{Client: "go-nsq", Case: o.bench, N: o.n}
	addrs := []string{o.addr}
	if o.addrs != "" {
		addrs = strings.Split(o.addrs, ",")
	}
	if o.filled < o.n {
		o.filled = o.n
	}
	handler := &consumerHandler{
		n:         int64(o.n),
		timedDone: make(chan struct{}),
		filled:    int64(o.filled),
		allRead:   make(chan struct{}),
		latencyN:  int64(o.latencyN),
		latencies: make([]time.Duration, 0, o.latencyN),
		allTimed:  make(chan struct{}),
	}
	config := nsq.NewConfig()
	config.MaxInFlight = o.maxInFlight
	consumer, err := nsq.NewConsumer(o.topic, o.channel, config)
	if err != nil {
		return res, err
	}
	consumer.SetLogger(nil, nsq.LogLevelError)
	consumer.AddHandler(handler)

	baseline := statusKiB("VmRSS")
	var pids []string
	if o.nsqdPids != "" {
		pids = strings.Split(o.nsqdPids, ",")
	}
	nsqdStart, nsqdKnown := processesCPU(pids)
	cpuStart := cpuTime()
	start := time.Now()
	if err := consumer.ConnectToNSQDs(addrs); err != nil {
		return res, fmt.Errorf("connecting to %v: %w", addrs, err)
	}
	var limit <-chan time.Time
	if o.timeLimit > 0 {
		limit = time.After(o.timeLimit)
	}
	select {
	case <-handler.timedDone:
	case <-limit:
		res.Truncated = true
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpuStart
	if nsqdEnd, ok := processesCPU(pids); ok && nsqdKnown {
		res.NsqdCPUSeconds = (nsqdEnd - nsqdStart).Seconds()
	}
	peak := statusKiB("VmHWM")

	received := handler.seen.Load()
	if received > int64(o.n) {
		received = int64(o.n)
	}
	res.Seconds = elapsed.Seconds()
	res.Acked = int(received)
	res.MsgsPerSec = float64(received) / elapsed.Seconds()
	res.CPUSeconds = cpu.Seconds()
	if peak > 0 {
		res.PeakRSSMiB = float64(peak) / 1024
		res.BaselineRSSMiB = float64(baseline) / 1024
	}

	if !res.Truncated {
		// The messages after the timed ones, untimed.
		select {
		case <-handler.allRead:
		case <-limit:
			res.Truncated = true
		}
		extra := handler.seen.Load() - int64(o.n)
		if extra > int64(o.filled-o.n) {
			extra = int64(o.filled - o.n)
		}
		res.UncountedAcked = int(extra)
	}
	if !res.Truncated && o.latencyN > 0 && o.pacer != "" {
		if err := pace(o, addrs); err != nil {
			res.FirstError = err.Error()
		} else {
			// Messages still on their way when the pacer exits get this long to arrive.
			select {
			case <-handler.allTimed:
			case <-time.After(5 * time.Second):
			}
		}
		// The handler goroutine stops writing once the consumer has stopped.
		consumer.Stop()
		<-consumer.StopChan
		latencies := handler.latencies
		res.LatencyN = len(latencies)
		if len(latencies) > 0 {
			sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
			res.P50us = percentile(latencies, 0.50)
			res.P99us = percentile(latencies, 0.99)
			res.P999us = percentile(latencies, 0.999)
		}
	} else {
		consumer.Stop()
		<-consumer.StopChan
	}
	return res, nil
}

// pace runs the pacer to its end: it publishes the latency phase's messages to addrs.
func pace(o options, addrs []string) error {
	command := exec.Command(o.pacer, "pace",
		"--addrs", strings.Join(addrs, ","),
		"--topic", o.topic,
		"--n", strconv.Itoa(o.latencyN),
		"--rate", strconv.FormatFloat(o.latencyRate, 'f', -1, 64),
		"--size", strconv.Itoa(o.size))
	command.Stderr = os.Stderr
	if err := command.Run(); err != nil {
		return fmt.Errorf("the pacer (%s pace) failed: %w", o.pacer, err)
	}
	return nil
}

// processesCPU is the user plus system CPU time of the processes pids, from /proc/<pid>/stat
// (in clock ticks of 1/100 s); false when there are none or one cannot be read.
func processesCPU(pids []string) (time.Duration, bool) {
	if len(pids) == 0 {
		return 0, false
	}
	var total time.Duration
	for _, pid := range pids {
		stat, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/stat")
		if err != nil {
			return 0, false
		}
		// The command name is in parentheses and may hold spaces; utime and stime are the
		// 12th and 13th fields after it.
		end := bytes.LastIndexByte(stat, ')')
		if end < 0 {
			return 0, false
		}
		fields := strings.Fields(string(stat[end+1:]))
		if len(fields) < 13 {
			return 0, false
		}
		utime, err1 := strconv.ParseInt(fields[11], 10, 64)
		stime, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		total += time.Duration(utime+stime) * 10 * time.Millisecond
	}
	return total, true
}

// statusKiB reads a kB field of /proc/self/status, such as VmRSS or VmHWM; 0 when missing.
func statusKiB(field string) int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, field+":")
		if !ok {
			continue
		}
		value, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0
		}
		return value
	}
	return 0
}
