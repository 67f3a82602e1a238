package main

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// TestHistIndexBounds checks that every value falls in a bucket whose
// bounds contain it, that buckets are contiguous and that a bucket is
// never wider than 1/64 of its lower bound.
func TestHistIndexBounds(t *testing.T) {
	prevHi := uint64(0)
	for i := 0; i < histBuckets; i++ {
		lo, w := histBounds(i)
		if i > 0 && lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ended at %d", i, lo, prevHi)
		}
		if lo >= histSub && w*histHalf > lo {
			t.Fatalf("bucket %d [%d,+%d) is too wide", i, lo, w)
		}
		prevHi = lo + w - 1
		if lo >= 1<<histMaxBits {
			break
		}
	}
	vals := []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1e6, 123456789, 1<<histMaxBits - 1}
	for i := 0; i < 1000; i++ {
		vals = append(vals, rand.Uint64N(1<<histMaxBits))
	}
	for _, v := range vals {
		i := histIndex(v)
		if i < 0 || i >= histBuckets {
			t.Fatalf("histIndex(%d) = %d out of range", v, i)
		}
		lo, w := histBounds(i)
		if v < lo || v >= lo+w {
			t.Fatalf("histIndex(%d) = %d with bounds [%d,%d)", v, i, lo, lo+w)
		}
	}
	// Values beyond the range are clamped into the last bucket in use.
	if histIndex(1<<62) != histIndex(1<<histMaxBits-1) {
		t.Errorf("huge values are not clamped")
	}
}

func TestHistogramQuantiles(t *testing.T) {
	tests := []struct {
		name   string
		values []time.Duration
		q      float64
		want   time.Duration
		tol    float64 // relative
	}{
		{"empty", nil, 0.5, 0, 0},
		{"single", []time.Duration{5 * time.Millisecond}, 0.99, 5 * time.Millisecond, 0},
		{"exact small", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.5, 5, 0},
		{"p90 of 1..10", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9, 0},
		{"max", []time.Duration{time.Millisecond, time.Second}, 1, time.Second, 0},
		{"p50 two values", []time.Duration{time.Millisecond, time.Second}, 0.5, time.Millisecond, 0.01},
		{"negative is zero", []time.Duration{-5}, 0.5, 0, 0},
	}
	for _, tt := range tests {
		var h Histogram
		for _, v := range tt.values {
			h.Record(v)
		}
		got := h.Quantile(tt.q)
		diff := float64(got - tt.want)
		if diff < 0 {
			diff = -diff
		}
		if diff > tt.tol*float64(tt.want) {
			t.Errorf("%s: Quantile(%v) = %v, want %v", tt.name, tt.q, got, tt.want)
		}
	}
}

// TestHistogramAgainstSort compares quantiles with the exact ones of a
// sorted sample spread over several orders of magnitude.
func TestHistogramAgainstSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Histogram
	vals := make([]time.Duration, 100000)
	for i := range vals {
		// Log-uniform between 10 µs and 10 s.
		v := time.Duration(10e3 * math.Pow(1e6, r.Float64()))
		vals[i] = v
		h.Record(v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if rel := float64(got-exact) / float64(exact); rel > 0.01 || rel < -0.01 {
			t.Errorf("q%v = %v, exact %v (%.2f%% off)", q, got, exact, rel*100)
		}
	}
	if h.Max() != vals[len(vals)-1] {
		t.Errorf("Max = %v, want %v", h.Max(), vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("Count = %d", h.Count())
	}
}

func TestHistogramMerge(t *testing.T) {
	var a, b, all Histogram
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Microsecond
		all.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(&Histogram{})
	if m != all {
		t.Errorf("merged histogram differs: count %d/%d max %v/%v min %d/%d", m.n, all.n, m.Max(), all.Max(), m.min, all.min)
	}
	if got := m.Summary(); got.Count != 1000 || got.Max != 1 || got.Mean != 0.501 {
		t.Errorf("Summary = %+v", got)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	b.ReportAllocs()
	d := time.Duration(0)
	for b.Loop() {
		d += 977
		h.Record(d & (1<<30 - 1))
	}
}
