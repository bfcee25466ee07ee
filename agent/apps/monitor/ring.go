package monitor

// ring is a sliding window of the last len(vals) samples of one figure,
// with their running sum: add and avg cost O(1) and allocate nothing.
type ring struct {
	vals []float64
	sum  float64
	i, n int
}

func newRing(size int) ring { return ring{vals: make([]float64, max(size, 1))} }

func (r *ring) add(v float64) {
	if r.n == len(r.vals) {
		r.sum -= r.vals[r.i]
	} else {
		r.n++
	}
	r.vals[r.i] = v
	r.sum += v
	r.i++
	if r.i == len(r.vals) {
		r.i = 0
		// Once per window, the sum afresh: no drift from float rounding.
		r.sum = 0
		for _, x := range r.vals[:r.n] {
			r.sum += x
		}
	}
}

// avg is the mean of the samples in the window (0 before the first).
func (r *ring) avg() float64 {
	if r.n == 0 {
		return 0
	}
	return r.sum / float64(r.n)
}
