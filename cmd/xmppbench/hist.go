package main

import (
	"math"
	"math/bits"
	"time"
)

// Histogram geometry: values below histSub are kept exactly; above, each
// power of two is cut into histHalf buckets, so a bucket is at most 1/64
// of its value wide and the midpoint is within 0.8% of any value in it.
// Values are nanoseconds and are clamped at 2^histMaxBits (about 2.4 h).
const (
	histSubBits = 7
	histSub     = 1 << histSubBits // 128
	histHalf    = histSub / 2      // 64
	histMaxBits = 43
	histBuckets = histSub + (histMaxBits-histSubBits+1)*histHalf
)

// Histogram records durations in log-linear buckets (the HdrHistogram
// layout, reduced to what a load test needs). Record does not allocate and
// is not safe for concurrent use: each goroutine keeps its own and the
// results are merged at the end, which keeps the hot path free of atomics
// and shared cache lines.
//
// The zero value is ready to use; it holds its counts inline (about 20 KiB).
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	sum    uint64
	min    uint64
	max    uint64
}

// histIndex returns the bucket of v.
func histIndex(v uint64) int {
	if v < histSub {
		return int(v)
	}
	if v >= 1<<histMaxBits {
		v = 1<<histMaxBits - 1
	}
	// v has bits.Len64(v) significant bits; keep the top histSubBits.
	g := bits.Len64(v) - histSubBits // >= 1
	return histSub + (g-1)*histHalf + int(v>>uint(g)) - histHalf
}

// histBounds returns the smallest value of bucket i and its width.
func histBounds(i int) (lo, width uint64) {
	if i < histSub {
		return uint64(i), 1
	}
	g := (i-histSub)/histHalf + 1
	m := (i-histSub)%histHalf + histHalf
	return uint64(m) << uint(g), 1 << uint(g)
}

// Record adds one duration; negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[histIndex(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += v
}

// Merge adds all of o's values to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of recorded values.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest recorded value, exactly.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Mean is the exact arithmetic mean.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / h.n)
}

// Quantile returns the value below or at which a fraction q (0..1] of the
// recorded values fall: the value of rank ceil(q*n), reported as the
// midpoint of its bucket and clamped to the exact min and max. It is 0 for
// an empty histogram.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	if q >= 1 {
		return time.Duration(h.max)
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := histBounds(i)
			v := lo + (w-1)/2
			if v < h.min {
				v = h.min
			}
			if v > h.max {
				v = h.max
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}

// LatencySummary is the JSON form of a histogram, in milliseconds.
type LatencySummary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the usual quantiles in milliseconds.
func (h *Histogram) Summary() LatencySummary {
	return LatencySummary{
		Count: h.n,
		Mean:  ms(h.Mean()),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}

// ms converts to milliseconds rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/1e3) / 1e3
}
