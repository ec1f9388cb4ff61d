package app

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/basinix/basinix/internal/testenv"
	"github.com/basinix/basinix/nix"
	"github.com/basinix/basinix/report"
)

// BenchmarkWebhookToCheckRun delivers pull_request opened webhooks at 20
// a second (a new PR each) and measures the time from sending each to the
// fake GitHub receiving its `basinix / eval` check run, and the server's
// memory once 100 PRs are tracked:
//
//	go test ./app -run '^$' -bench WebhookToCheckRun -benchtime 1x
//
// BASINIX_BENCH_SECONDS sets how long deliveries go on (default 60).
func BenchmarkWebhookToCheckRun(b *testing.B) {
	secs := testenv.EnvInt("BASINIX_BENCH_SECONDS", 60)
	const rate = 20
	f := newApp(b)
	n := secs * rate
	template := f.prEvent(b, "opened", "0000000000000000000000000000000000000000")
	heads := make([]string, n)
	bodies := make([][]byte, n)
	for i := range n {
		var p map[string]any
		json.Unmarshal(template, &p)
		h := make([]byte, 20)
		rand.Read(h)
		heads[i] = hex.EncodeToString(h)
		p["number"] = i + 1
		pr := p["pull_request"].(map[string]any)
		pr["number"] = i + 1
		pr["head"].(map[string]any)["sha"] = heads[i]
		bodies[i], _ = json.Marshal(p)
	}
	sent := make([]time.Time, n)
	var rss100 int64
	var heap100 uint64
	b.ResetTimer()
	tick := time.NewTicker(time.Second / rate)
	var wg sync.WaitGroup
	for i := range n {
		<-tick.C
		sent[i] = time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := f.gh.Deliver(f.url, "pull_request", "bench-"+heads[i], bodies[i])
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
		}()
		if i == 100 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			rss100, heap100 = nix.ResidentBytes(os.Getpid()), ms.HeapInuse
		}
	}
	tick.Stop()
	wg.Wait()

	created := map[string]time.Time{}
	testenv.Eventually(b, 2*time.Minute, func() bool {
		for _, c := range f.gh.CheckRuns("octo/pkgs") {
			if c.Name == report.EvalCheckName {
				created[c.HeadSHA] = c.Created
			}
		}
		return len(created) >= n
	}, func() string { return fmt.Sprintf("%d of %d eval check runs created", len(created), n) })
	b.StopTimer()
	var lat []time.Duration
	for i, h := range heads {
		if c, ok := created[h]; ok {
			lat = append(lat, c.Sub(sent[i]))
		}
	}
	if len(lat) < n {
		b.Fatalf("%d of %d eval check runs created", len(lat), n)
	}
	slices.Sort(lat)
	p50, p99 := lat[len(lat)/2], lat[len(lat)*99/100]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(rss100)/(1<<20), "rss-MiB-100PRs")
	b.Logf("%d deliveries at %d/s: webhook → eval check run p50 %s, p99 %s, max %s; with 100 PRs tracked: RSS %d MiB, Go heap %d MiB (the process also holds the test's fake GitHub)",
		n, rate, p50, p99, lat[len(lat)-1], rss100>>20, heap100>>20)
}
