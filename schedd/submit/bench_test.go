package submit

import "testing"

// BenchmarkParse reports the jobs per second a submission of 10,000 jobs
// is parsed at, when the jobs are identical and when each differs.
func BenchmarkParse(b *testing.B) {
	dir := fixtures(b)
	for _, bc := range []struct{ name, src string }{
		{"identical", edit(kvmBase, "queue 10000")},
		{"per-proc", edit(kvmBase, "+Index = $(Process)", "queue 10000")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				mustParse(b, dir, bc.src, Options{})
			}
			b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
