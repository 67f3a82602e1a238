package conf

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"30s", 30 * time.Second, false},
		{"5m", 5 * time.Minute, false},
		{"1h30m", 90 * time.Minute, false},
		{"250ms", 250 * time.Millisecond, false},
		{"0", 0, false},
		{"90d", 90 * 24 * time.Hour, false},
		{"2w", 14 * 24 * time.Hour, false},
		{"1w2d3h", 9*24*time.Hour + 3*time.Hour, false},
		{"1.5d", 36 * time.Hour, false},
		{"+1d", 24 * time.Hour, false},
		{"-1d12h", -36 * time.Hour, false},
		{"1d1.5h", 24*time.Hour + 90*time.Minute, false},
		{"7y", 7 * 365 * 24 * time.Hour, false},
		{"1y2w", 379 * 24 * time.Hour, false},
		{"0.5y", 4380 * time.Hour, false},
		{"292y", 292 * 365 * 24 * time.Hour, false},
		{"293y", 0, true}, // past the int64 nanoseconds time.Duration holds
		{"y", 0, true},
		{"1yy", 0, true},
		{"", 0, true},
		{"d", 0, true},
		{"5", 0, true},
		{"5x", 0, true},
		{"1dd", 0, true},
		{"1d5", 0, true},
		{"1..5d", 0, true},
		{"-", 0, true},
		{"1d 2h", 0, true},
		{"100000000w", 0, true}, // overflows int64 nanoseconds
		{"15000w15000w", 0, true},
	} {
		got, err := parseDuration(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
