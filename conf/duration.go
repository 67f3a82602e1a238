package conf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

const (
	day  = 24 * time.Hour
	week = 7 * day
	year = 365 * day // retention periods ("7y") count whole days, not calendar years
)

// parseDuration accepts time.ParseDuration syntax plus the units "d" (24h),
// "w" (7d) and "y" (365d), which retention-style settings ("90d", "7y")
// need and Go lacks.
// Units may be mixed: "1w2d12h".
func parseDuration(s string) (time.Duration, error) {
	if !strings.ContainsAny(s, "dwy") {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errors.New(durationHint(s))
		}
		return d, nil
	}
	rest := s
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	if rest == "" {
		return 0, errors.New(durationHint(s))
	}
	var total time.Duration
	for rest != "" {
		// One "<number><unit>" segment.
		n := 0
		for n < len(rest) && (rest[n] >= '0' && rest[n] <= '9' || rest[n] == '.') {
			n++
		}
		u := n
		for u < len(rest) && !(rest[u] >= '0' && rest[u] <= '9' || rest[u] == '.') {
			u++
		}
		num, unit := rest[:n], rest[n:u]
		rest = rest[u:]
		if num == "" {
			return 0, errors.New(durationHint(s))
		}
		var seg time.Duration
		switch unit {
		case "d", "w", "y":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, errors.New(durationHint(s))
			}
			scale := day
			switch unit {
			case "w":
				scale = week
			case "y":
				scale = year
			}
			v := f * float64(scale)
			if v >= math.MaxInt64 {
				return 0, fmt.Errorf("duration %q is too long", s)
			}
			seg = time.Duration(v)
		default:
			d, err := time.ParseDuration(num + unit)
			if err != nil {
				return 0, errors.New(durationHint(s))
			}
			seg = d
		}
		if total > math.MaxInt64-seg {
			return 0, fmt.Errorf("duration %q is too long", s)
		}
		total += seg
	}
	if neg {
		total = -total
	}
	return total, nil
}

func durationHint(s string) string {
	return fmt.Sprintf("invalid duration %q (want a number and a unit: ns, us, ms, s, m, h, d, w or y, as in \"30s\" or \"90d\")", s)
}
