package app

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/basinix/basinix/build"
	"github.com/basinix/basinix/report"
	"github.com/basinix/basinix/store"
)

// metrics are the server's Prometheus metrics, in a registry of its own.
type metrics struct {
	reg          *prometheus.Registry
	webhooks     *prometheus.CounterVec
	githubErrors prometheus.Counter
	evalSeconds  prometheus.Histogram
	buildSeconds prometheus.Histogram
}

func newMetrics(st interface {
	CountRevisions(ctx context.Context, state string) (int, error)
}, pool *build.Pool) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "basinix_webhooks_total",
			Help: "Webhook deliveries by event and outcome."}, []string{"event", "outcome"}),
		githubErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "basinix_github_api_errors_total",
			Help: "GitHub API answers that were errors (retried or not)."}),
		evalSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "basinix_evaluation_seconds",
			Help: "Evaluations of one commit for one system (not cached).", Buckets: prometheus.ExponentialBuckets(0.5, 2, 12)}),
		buildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "basinix_review_build_seconds",
			Help: "Build phases of reviews.", Buckets: prometheus.ExponentialBuckets(1, 2, 16)}),
	}
	count := func(f func(build.Stats) int) func() float64 {
		return func() float64 { return float64(f(pool.Stats())) }
	}
	m.reg.MustRegister(m.webhooks, m.githubErrors, m.evalSeconds, m.buildSeconds,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "basinix_revisions_queued", Help: "PR revisions waiting for review."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			n, _ := st.CountRevisions(ctx, store.Queued)
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "basinix_builds_queued", Help: "Derivations waiting for a machine."}, count(func(s build.Stats) int { return s.Queued })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "basinix_builds_running", Help: "Derivations handed to a machine."}, count(func(s build.Stats) int { return s.Running })),
	)
	return m
}

func (m *metrics) handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// observe records a finished review's evaluation and build times.
func (m *metrics) observe(rep *report.Report) {
	for _, e := range rep.Evaluations {
		if !e.Cached {
			m.evalSeconds.Observe(e.Seconds)
		}
	}
	if rep.Timings != nil {
		m.buildSeconds.Observe(rep.Timings.Build)
	}
}
