// Command streamlat measures what a proxy adds to streamed events, and what
// it costs in memory to hold many streams open.
//
// It serves an OpenAI-style SSE upstream itself; each event carries the
// time it was written and flushed. Clients read the events through each
// target and record receive time minus send time (one process, one clock).
//
//	streamlat -upstream 127.0.0.1:18085 -targets direct=http://127.0.0.1:18085,gateway=http://127.0.0.1:8080 \
//	    -header 'Authorization: Bearer sk-bench' -streams 50 -events 100 -interval 5ms
//	streamlat ... -rss-pid PID -open 1000   # hold 1000 streams open, report the target's RSS
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// now is wall-clock ns: the upstream may run in another process, and both
// read the same system clock.
func now() int64 { return time.Now().UnixNano() }

func main() {
	upstream := flag.String("upstream", "127.0.0.1:18085", "address for the built-in SSE upstream")
	targets := flag.String("targets", "", "name=baseURL,... (baseURL without /v1/chat/completions)")
	header := flag.String("header", "", "header sent to every target except direct, 'Name: value'")
	streams := flag.Int("streams", 20, "concurrent streams per target in the latency run")
	events := flag.Int("events", 100, "events per stream")
	interval := flag.Duration("interval", 5*time.Millisecond, "gap between events")
	open := flag.Int("open", 0, "RSS run: streams to hold open through the target named by -rss-target")
	rssPID := flag.Int("rss-pid", 0, "RSS run: PID of the target process")
	rssTarget := flag.String("rss-target", "gateway", "RSS run: target name")
	serveOnly := flag.Bool("serve", false, "only serve the upstream until interrupted")
	flag.Parse()

	ln, err := net.Listen("tcp", *upstream)
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = http.Serve(ln, http.HandlerFunc(sse)) }()
	if *serveOnly {
		select {}
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4096, MaxConnsPerHost: 0, DisableCompression: true}
	client := &http.Client{Transport: tr}

	named := map[string]string{}
	var order []string
	for _, kv := range strings.Split(*targets, ",") {
		name, u, ok := strings.Cut(kv, "=")
		if !ok {
			log.Fatalf("bad -targets entry %q", kv)
		}
		named[name] = u
		order = append(order, name)
	}
	hName, hValue, _ := strings.Cut(*header, ":")
	hdr := func(name string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		if name != "direct" && hName != "" {
			h.Set(strings.TrimSpace(hName), strings.TrimSpace(hValue))
		}
		return h
	}

	if *open > 0 {
		rssRun(client, named[*rssTarget]+"/v1/chat/completions", hdr(*rssTarget), *open, *rssPID)
		return
	}
	// Interleave targets over rounds so drift on a shared machine cancels.
	lat := map[string][]int64{}
	for round := 0; round < 3; round++ {
		for _, name := range order {
			l, err := latencyRun(client, named[name]+"/v1/chat/completions", hdr(name), *streams, *events, *interval)
			if err != nil {
				log.Fatalf("%s: %v", name, err)
			}
			lat[name] = append(lat[name], l...)
		}
	}
	base := pct(lat["direct"], 50)
	fmt.Printf("event latency, upstream flush -> client read (µs), %d streams x %d events x 3 rounds, interval %v\n", *streams, *events, *interval)
	fmt.Printf("%-8s %8s %8s %8s %8s %8s %8s\n", "target", "n", "p50", "p90", "p99", "max", "+p50")
	for _, name := range order {
		l := lat[name]
		fmt.Printf("%-8s %8d %8.0f %8.0f %8.0f %8.0f %8.0f\n", name, len(l), pct(l, 50), pct(l, 90), pct(l, 99), pct(l, 100), pct(l, 50)-base)
	}
}

func pct(ns []int64, p float64) float64 {
	if len(ns) == 0 {
		return 0
	}
	s := slices.Clone(ns)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return float64(s[i]) / 1e3
}

// sse streams events in OpenAI's chunk shape; each carries its send time.
// Query: the body's "n" and "gap_us" fields set count and gap.
func sse(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	n := field(body, `"n":`, 100)
	gap := time.Duration(field(body, `"gap_us":`, 5000)) * time.Microsecond
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(200)
	fl := w.(http.Flusher)
	fl.Flush()
	var buf []byte
	t := time.NewTicker(gap)
	defer t.Stop()
	for i := 0; i < n; i++ {
		select {
		case <-r.Context().Done():
			return
		case <-t.C:
		}
		buf = append(buf[:0], `data: {"id":"chatcmpl-lat","object":"chat.completion.chunk","created":0,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"sent":`...)
		buf = strconv.AppendInt(buf, now(), 10)
		buf = append(buf, "}\n\n"...)
		if _, err := w.Write(buf); err != nil {
			return
		}
		fl.Flush()
	}
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
}

func field(body []byte, key string, def int) int {
	i := bytes.Index(body, []byte(key))
	if i < 0 {
		return def
	}
	rest := body[i+len(key):]
	j := bytes.IndexAny(rest, ",}")
	if j < 0 {
		return def
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(rest[:j])))
	if err != nil {
		return def
	}
	return v
}

func latencyRun(c *http.Client, url string, h http.Header, streams, events int, gap time.Duration) ([]int64, error) {
	var (
		mu   sync.Mutex
		all  []int64
		errs []error
		wg   sync.WaitGroup
	)
	body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":true,"messages":[],"n":%d,"gap_us":%d}`, events, gap.Microseconds())
	for s := 0; s < streams; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := readStream(context.Background(), c, url, h, body, nil)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, l...)
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return all, errors.Join(errs...)
}

// readStream reads one stream and returns each event's latency. opened, if
// not nil, is signalled once the first event arrived.
func readStream(ctx context.Context, c *http.Client, url string, h http.Header, body string, opened func()) ([]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = h.Clone()
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	var out []int64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Bytes()
		i := bytes.Index(line, []byte(`"sent":`))
		if i < 0 {
			continue
		}
		t := now()
		v, err := strconv.ParseInt(string(bytes.TrimRight(line[i+7:], "}")), 10, 64)
		if err == nil {
			out = append(out, t-v)
		}
		if opened != nil {
			opened()
			opened = nil
		}
	}
	return out, sc.Err()
}

func rssRun(c *http.Client, url string, h http.Header, n, pid int) {
	before := rss(pid)
	body := `{"model":"gpt-4o-mini","stream":true,"messages":[],"n":60,"gap_us":1000000}`
	var opened sync.WaitGroup
	opened.Add(n)
	ctx, cancel := context.WithCancel(context.Background())
	var done sync.WaitGroup
	for i := 0; i < n; i++ {
		done.Add(1)
		go func() {
			defer done.Done()
			_, _ = readStream(ctx, c, url, h, body, opened.Done)
		}()
	}
	opened.Wait()
	time.Sleep(2 * time.Second) // let the open streams settle
	peak := rss(pid)
	for i := 0; i < 5; i++ {
		time.Sleep(time.Second)
		peak = max(peak, rss(pid))
	}
	fmt.Printf("RSS of pid %d: %.1f MB before, %.1f MB peak with %d streams open\n", pid, float64(before)/1024, float64(peak)/1024, n)
	cancel()
	done.Wait()
}

// rss reads VmRSS in KiB.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}
