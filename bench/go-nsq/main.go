// Command go-nsq-bench publishes N messages to one nsqd through go-nsq v1.1.0, in one of the
// benchmark cases of `cargo xtask bench`, and prints one JSON line with the result on stdout.
//
//	go-nsq-bench -addr 127.0.0.1:4150 -topic bench -n 200000 -size 100 -case c
//
// Cases: a (one caller, wait for each ack), b (-callers goroutines sharing one producer, each
// waiting for its acks), c (PublishAsync with at most -window unanswered), d (MultiPublish in
// batches of -batch from one caller). Cases a, b and c also report latency percentiles, from
// the call to the ack. go-nsq has no automatic batching, so cstar is reported as unsupported.
//
// Cases j and j0 (failover, see failover.go) publish over one go-nsq Producer per nsqd of
// -addrs, and in j kill the nsqd at -addrs[-kill-index] (pid -kill-pid) a third of the way in:
//
//	go-nsq-bench -addrs 127.0.0.1:4150,127.0.0.1:4151,127.0.0.1:4152 -case j -kill-pid 1234
//
// Case l (a frozen node, also in failover.go) is j with a 2 s timeout on each publish and, instead
// of the kill, the nsqd at -addrs[-kill-index] stopped (SIGSTOP) for 6 s, then continued.
//
// Cases m and n (see consumer.go) consume instead: go-nsq's Consumer reads -n messages that the
// suite published beforehand, from -addr (m) or every nsqd of -addrs (n), then the latency phase:
//
//	go-nsq-bench -case m -addr 127.0.0.1:4150 -channel bench -n 1000000 -max-in-flight 2500 \
//	    -latency-n 2000 -latency-rate 1000 -pacer target/release/nsq-bench
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/nsqio/go-nsq"
)

type result struct {
	Client      string  `json:"client"`
	Case        string  `json:"case"`
	N           int     `json:"n"`
	Seconds     float64 `json:"seconds,omitempty"`
	MsgsPerSec  float64 `json:"msgs_per_sec,omitempty"`
	Acked       int     `json:"acked"`
	Errors      int     `json:"errors"`
	Truncated   bool    `json:"truncated,omitempty"`
	P50us       float64 `json:"p50_us,omitempty"`
	P99us       float64 `json:"p99_us,omitempty"`
	P999us      float64 `json:"p999_us,omitempty"`
	CPUSeconds  float64 `json:"cpu_s,omitempty"`
	Unsupported string  `json:"unsupported,omitempty"`
	FirstError  string  `json:"first_error,omitempty"`

	// Failover cases only; see failover.go.
	Outcomes        *outcomes `json:"outcomes,omitempty"`
	AcksPerMs       []uint32  `json:"acks_per_ms,omitempty"`
	KillAtS         *float64  `json:"kill_at_s,omitempty"`
	Killed          bool      `json:"killed,omitempty"`
	KillIndex       *int      `json:"kill_index,omitempty"`
	NodeAcked       []uint64  `json:"node_acked,omitempty"`
	NodeAckedAtKill []uint64  `json:"node_acked_at_kill,omitempty"`
	BackAtS         *float64  `json:"back_at_s,omitempty"`

	// Consumer cases only; see consumer.go.
	PeakRSSMiB     float64 `json:"peak_rss_mib,omitempty"`
	BaselineRSSMiB float64 `json:"baseline_rss_mib,omitempty"`
	LatencyN       int     `json:"latency_n,omitempty"`
	UncountedAcked int     `json:"uncounted_acked,omitempty"`
	NsqdCPUSeconds float64 `json:"nsqd_cpu_s,omitempty"`
}

type options struct {
	addr      string
	topic     string
	n         int
	size      int
	bench     string
	callers   int
	window    int
	batch     int
	timeLimit time.Duration
	addrs     string
	killPid   int
	killIndex int

	// Consumer cases only.
	channel     string
	filled      int
	nsqdPids    string
	maxInFlight int
	latencyN    int
	latencyRate float64
	pacer       string
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:4150", "nsqd TCP address")
	flag.StringVar(&o.topic, "topic", "bench", "topic")
	flag.IntVar(&o.n, "n", 200000, "messages to publish")
	flag.IntVar(&o.size, "size", 100, "body size in bytes")
	flag.StringVar(&o.bench, "case", "a", "a, b, c, cstar or d")
	flag.IntVar(&o.callers, "callers", 16, "concurrent callers for case b")
	flag.IntVar(&o.window, "window", 1000, "most unanswered publishes for case c")
	flag.IntVar(&o.batch, "batch", 100, "messages per MPUB for case d")
	flag.DurationVar(&o.timeLimit, "time-limit", 0, "stop publishing after this long (0: never)")
	flag.StringVar(&o.addrs, "addrs", "", "cases j, j0 and l: the nsqd TCP addresses, comma-separated")
	flag.IntVar(&o.killPid, "kill-pid", 0, "cases j and l: the pid of the nsqd at -addrs[-kill-index]")
	flag.IntVar(&o.killIndex, "kill-index", 1, "cases j, j0 and l: the index in -addrs of the nsqd killed or stopped")
	flag.StringVar(&o.channel, "channel", "bench", "cases m and n: the channel to read")
	flag.IntVar(&o.filled, "filled", 0, "cases m and n: messages in the channel, -n timed and the rest read after (default -n)")
	flag.IntVar(&o.maxInFlight, "max-in-flight", 2500, "cases m and n: the consumer's max_in_flight")
	flag.StringVar(&o.nsqdPids, "nsqd-pids", "", "cases m and n: the pids of the nsqd read from, whose CPU time is taken over the timed phase")
	flag.IntVar(&o.latencyN, "latency-n", 2000, "cases m and n: messages of the latency phase (0: none)")
	flag.Float64Var(&o.latencyRate, "latency-rate", 1000, "cases m and n: messages per second of the latency phase")
	flag.StringVar(&o.pacer, "pacer", "", "cases m and n: the nsq-bench binary whose `pace` command publishes the latency phase")
	flag.Parse()
	if o.n < 1 || o.size < 1 || o.callers < 1 || o.window < 1 || o.batch < 1 {
		fatal(fmt.Errorf("-n, -size, -callers, -window and -batch must be at least 1"))
	}

	res := result{Client: "go-nsq", Case: o.bench, N: o.n}
	if o.bench == "cstar" {
		res.Unsupported = "n/a (no batching)"
		emit(res)
		return
	}
	if o.bench == "m" || o.bench == "n" {
		if o.maxInFlight < 1 {
			fatal(fmt.Errorf("-max-in-flight must be at least 1"))
		}
		res, err := consume(o)
		if err != nil {
			fatal(err)
		}
		emit(res)
		return
	}
	if o.bench == "j" || o.bench == "j0" || o.bench == "l" {
		res, err := failover(o)
		if err != nil {
			fatal(err)
		}
		emit(res)
		return
	}

	config := nsq.NewConfig()
	producer, err := nsq.NewProducer(o.addr, config)
	if err != nil {
		fatal(err)
	}
	producer.SetLogger(nil, nsq.LogLevelError)
	// go-nsq connects lazily; connect before the clock starts.
	if err := producer.Ping(); err != nil {
		fatal(fmt.Errorf("connecting to %s: %w", o.addr, err))
	}

	body := make([]byte, o.size)
	for i := range body {
		body[i] = 'x'
	}
	var deadline time.Time
	if o.timeLimit > 0 {
		deadline = time.Now().Add(o.timeLimit)
	}

	var t tally
	cpuStart := cpuTime()
	start := time.Now()
	switch o.bench {
	case "a":
		t = serial(producer, o.topic, body, o.n, deadline)
	case "b":
		t = concurrent(producer, o.topic, body, o.n, o.callers, deadline)
	case "c":
		t = pipelined(producer, o.topic, body, o.n, o.window, deadline)
	case "d":
		t = batches(producer, o.topic, body, o.n, o.batch, deadline)
	default:
		fatal(fmt.Errorf("unknown case %q", o.bench))
	}
	elapsed := time.Since(start)
	cpu := cpuTime() - cpuStart
	producer.Stop()

	res.Seconds = elapsed.Seconds()
	res.Acked = t.acked
	res.Errors = t.errors
	res.Truncated = t.truncated
	res.FirstError = t.firstError
	res.MsgsPerSec = float64(t.acked) / elapsed.Seconds()
	res.CPUSeconds = cpu.Seconds()
	if len(t.latencies) > 0 {
		sort.Slice(t.latencies, func(i, j int) bool { return t.latencies[i] < t.latencies[j] })
		res.P50us = percentile(t.latencies, 0.50)
		res.P99us = percentile(t.latencies, 0.99)
		res.P999us = percentile(t.latencies, 0.999)
	}
	emit(res)
}

// tally is what one run, or one caller of a run, did.
type tally struct {
	acked      int
	errors     int
	truncated  bool
	firstError string
	latencies  []time.Duration
}

func (t *tally) record(err error, messages int) {
	if err == nil {
		t.acked += messages
		return
	}
	t.errors += messages
	if t.firstError == "" {
		t.firstError = err.Error()
	}
}

func (t *tally) merge(other tally) {
	t.acked += other.acked
	t.errors += other.errors
	t.truncated = t.truncated || other.truncated
	if t.firstError == "" {
		t.firstError = other.firstError
	}
	t.latencies = append(t.latencies, other.latencies...)
}

func expired(deadline time.Time) bool {
	return !deadline.IsZero() && time.Now().After(deadline)
}

// serial: one caller, each publish waits for its ack.
func serial(p *nsq.Producer, topic string, body []byte, n int, deadline time.Time) tally {
	t := tally{latencies: make([]time.Duration, 0, n)}
	for i := 0; i < n; i++ {
		if expired(deadline) {
			t.truncated = true
			break
		}
		began := time.Now()
		err := p.Publish(topic, body)
		t.latencies = append(t.latencies, time.Since(began))
		t.record(err, 1)
	}
	return t
}

// concurrent: callers goroutines share the producer, each publishing its share serially.
func concurrent(p *nsq.Producer, topic string, body []byte, n, callers int, deadline time.Time) tally {
	results := make([]tally, callers)
	var wg sync.WaitGroup
	for c := 0; c < callers; c++ {
		share := n / callers
		if c < n%callers {
			share++
		}
		wg.Add(1)
		go func(c, share int) {
			defer wg.Done()
			results[c] = serial(p, topic, body, share, deadline)
		}(c, share)
	}
	wg.Wait()
	var t tally
	for _, r := range results {
		t.merge(r)
	}
	return t
}

// pipelined: PublishAsync with at most window publishes unanswered.
func pipelined(p *nsq.Producer, topic string, body []byte, n, window int, deadline time.Time) tally {
	t := tally{latencies: make([]time.Duration, 0, n)}
	done := make(chan *nsq.ProducerTransaction, window)
	slots := make(chan struct{}, window)
	collected := make(chan struct{})
	sent := make(chan int, 1)
	go func() {
		defer close(collected)
		expected := -1
		received := 0
		for expected < 0 || received < expected {
			select {
			case tx := <-done:
				received++
				t.latencies = append(t.latencies, time.Since(tx.Args[0].(time.Time)))
				t.record(tx.Error, 1)
				<-slots
			case expected = <-sent:
			}
		}
	}()
	queued := 0
	truncated := false
	var refused []error
	for i := 0; i < n; i++ {
		if expired(deadline) {
			truncated = true
			break
		}
		slots <- struct{}{}
		if err := p.PublishAsync(topic, body, done, time.Now()); err != nil {
			// Not queued: no transaction will arrive for it.
			<-slots
			refused = append(refused, err)
			continue
		}
		queued++
	}
	sent <- queued
	<-collected
	t.truncated = truncated
	for _, err := range refused {
		t.record(err, 1)
	}
	return t
}

// batches: MultiPublish of batch messages at a time from one caller.
func batches(p *nsq.Producer, topic string, body []byte, n, batch int, deadline time.Time) tally {
	var t tally
	full := make([][]byte, batch)
	for i := range full {
		full[i] = body
	}
	for left := n; left > 0; {
		if expired(deadline) {
			t.truncated = true
			break
		}
		size := batch
		if left < size {
			size = left
		}
		began := time.Now()
		err := p.MultiPublish(topic, full[:size])
		t.latencies = append(t.latencies, time.Since(began))
		t.record(err, size)
		left -= size
	}
	return t
}

// percentile of sorted latencies by the nearest-rank method, in microseconds.
func percentile(sorted []time.Duration, q float64) float64 {
	rank := int(q*float64(len(sorted))+0.999999999) - 1
	if rank < 0 {
		rank = 0
	}
	if rank >= len(sorted) {
		rank = len(sorted) - 1
	}
	return float64(sorted[rank].Nanoseconds()) / 1e3
}

// cpuTime is the user plus system CPU time this process has used, all threads.
func cpuTime() time.Duration {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano())
}

func emit(r result) {
	line, err := json.Marshal(r)
	if err != nil {
		fatal(err)
	}
	fmt.Println(string(line))
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "go-nsq-bench: %v\n", err)
	os.Exit(1)
}
