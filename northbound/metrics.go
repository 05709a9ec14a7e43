package northbound

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
)

// apiMetrics counts the API's requests by route template and status.
type apiMetrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

func newAPIMetrics(reg prometheus.Registerer) *apiMetrics {
	m := &apiMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "brtun", Subsystem: "api", Name: "requests_total",
			Help: "REST API requests, by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "brtun", Subsystem: "api", Name: "request_duration_seconds",
			Help:    "Time the REST API took to answer, by method and route template (?wait included).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.seconds)
	return m
}

// measure records every request under its route template ("/v1/networks/{network}"),
// so the label set stays bounded; requests no route matched count as "unmatched".
func (a *API) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.metrics == nil {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := "unmatched"
		if cur := mux.CurrentRoute(r); cur != nil {
			if tpl, err := cur.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		a.metrics.requests.WithLabelValues(r.Method, route, strconv.Itoa(rec.status)).Inc()
		a.metrics.seconds.WithLabelValues(r.Method, route).Observe(time.Since(start).Seconds())
	})
}
