package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// PoolStats is a snapshot of the database connection pool.
type PoolStats struct {
	Acquired, Idle, Total, Max int32
	// Acquires counts connections handed out; EmptyAcquires those that had
	// to wait for one; AcquireDuration is the time spent acquiring.
	Acquires, EmptyAcquires, CanceledAcquires int64
	AcquireDuration                           time.Duration
}

// WatchPool exports the pool's statistics, read at each scrape.
func (m *Metrics) WatchPool(stats func() PoolStats) {
	if m == nil {
		return
	}
	m.reg.MustRegister(poolCollector(stats))
}

type poolCollector func() PoolStats

var (
	poolConns = prometheus.NewDesc(Namespace+"_db_pool_connections", "Database connections of this process's pool, by state (acquired, idle, total) and its maximum (max).",
		[]string{"state"}, nil)
	poolAcquires      = prometheus.NewDesc(Namespace+"_db_pool_acquires_total", "Connections acquired from the pool.", nil, nil)
	poolEmptyAcquires = prometheus.NewDesc(Namespace+"_db_pool_empty_acquires_total", "Acquires that waited because the pool had no idle connection.", nil, nil)
	poolCanceled      = prometheus.NewDesc(Namespace+"_db_pool_canceled_acquires_total", "Acquires canceled by their context.", nil, nil)
	poolAcquireTime   = prometheus.NewDesc(Namespace+"_db_pool_acquire_seconds_total", "Time spent acquiring connections.", nil, nil)
)

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolAcquires, poolEmptyAcquires, poolCanceled, poolAcquireTime} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c()
	for state, v := range map[string]int32{"acquired": s.Acquired, "idle": s.Idle, "total": s.Total, "max": s.Max} {
		ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(v), state)
	}
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.Acquires))
	ch <- prometheus.MustNewConstMetric(poolEmptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquires))
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(s.CanceledAcquires))
	ch <- prometheus.MustNewConstMetric(poolAcquireTime, prometheus.CounterValue, s.AcquireDuration.Seconds())
}

// ArtifactTotals counts the stored artifacts and their bytes.
type ArtifactTotals func(ctx context.Context) (count, bytes int64, err error)

// WatchArtifacts exports the number and total size of stored artifacts. The
// totals come from the database, so they are the same on every process; a
// scrape reuses a result younger than maxAge, which keeps frequent scrapes of
// many processes from counting a large table again and again.
func (m *Metrics) WatchArtifacts(totals ArtifactTotals, maxAge time.Duration) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&artifactCollector{totals: cached[[2]int64]{maxAge: maxAge, read: func(ctx context.Context) ([2]int64, error) {
		count, bytes, err := totals(ctx)
		return [2]int64{count, bytes}, err
	}}})
}

var (
	artifactCount = prometheus.NewDesc(Namespace+"_artifacts", "Artifacts recorded in the database.", nil, nil)
	artifactBytes = prometheus.NewDesc(Namespace+"_artifacts_bytes", "Total size of the recorded artifacts, in bytes.", nil, nil)
	artifactUp    = prometheus.NewDesc(Namespace+"_artifacts_scrape_ok", "1 when the artifact totals could be read at the last attempt, else 0.", nil, nil)
)

type artifactCollector struct{ totals cached[[2]int64] }

func (c *artifactCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- artifactCount
	ch <- artifactBytes
	ch <- artifactUp
}

func (c *artifactCollector) Collect(ch chan<- prometheus.Metric) {
	t, ok := c.totals.get()
	if ok {
		ch <- prometheus.MustNewConstMetric(artifactCount, prometheus.GaugeValue, float64(t[0]))
		ch <- prometheus.MustNewConstMetric(artifactBytes, prometheus.GaugeValue, float64(t[1]))
	}
	ch <- prometheus.MustNewConstMetric(artifactUp, prometheus.GaugeValue, up(ok))
}

// cached keeps a database reading for maxAge: frequent scrapes of many
// processes then do not repeat the query. A failed reading is not kept.
type cached[T any] struct {
	read   func(ctx context.Context) (T, error)
	maxAge time.Duration

	mu  sync.Mutex
	at  time.Time
	val T
	ok  bool
}

// get returns the last good reading and whether the last attempt worked.
func (c *cached[T]) get() (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() || time.Since(c.at) >= c.maxAge {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		v, err := c.read(ctx)
		cancel()
		c.at, c.ok = time.Now(), err == nil
		if err == nil {
			c.val = v
		}
	}
	return c.val, c.ok
}

func up(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}

// TaskQueue reads the numbers of incomplete tasks by state and the creation
// time of the oldest waiting task (zero when none waits).
type TaskQueue func(ctx context.Context) (counts map[string]int64, oldestWaiting time.Time, err error)

// WatchTaskQueue exports the task queue: tasks by state and the age of the
// oldest waiting one, which tells when workers fall behind. Like the artifact
// totals, a scrape reuses a reading younger than maxAge.
func (m *Metrics) WatchTaskQueue(queue TaskQueue, maxAge time.Duration) {
	if m == nil {
		return
	}
	m.reg.MustRegister(&queueCollector{queue: cached[queueReading]{maxAge: maxAge, read: func(ctx context.Context) (queueReading, error) {
		counts, oldest, err := queue(ctx)
		return queueReading{counts, oldest}, err
	}}})
}

var (
	queueTasks  = prometheus.NewDesc(Namespace+"_tasks_queue", "Incomplete tasks of every process, by state (waiting, running, canceling).", []string{"state"}, nil)
	queueOldest = prometheus.NewDesc(Namespace+"_tasks_oldest_waiting_seconds", "Age of the oldest waiting task, 0 when none waits.", nil, nil)
	queueUp     = prometheus.NewDesc(Namespace+"_tasks_queue_scrape_ok", "1 when the task queue could be read at the last attempt, else 0.", nil, nil)
)

// queueReading is one reading of the task queue.
type queueReading struct {
	counts map[string]int64
	oldest time.Time
}

type queueCollector struct{ queue cached[queueReading] }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueTasks
	ch <- queueOldest
	ch <- queueUp
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	q, ok := c.queue.get()
	if ok {
		for state, n := range q.counts {
			ch <- prometheus.MustNewConstMetric(queueTasks, prometheus.GaugeValue, float64(n), state)
		}
		age := 0.0
		if !q.oldest.IsZero() {
			age = max(time.Since(q.oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(queueOldest, prometheus.GaugeValue, age)
	}
	ch <- prometheus.MustNewConstMetric(queueUp, prometheus.GaugeValue, up(ok))
}
