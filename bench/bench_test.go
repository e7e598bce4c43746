package bench

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMedianOf(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, medianOf(tt.in), "%v", tt.in)
	}
}

// TestCompareRatiosArePaired: the ratio is the median of per-repetition
// ratios, so noise that hits both sides of one repetition cancels.
func TestCompareRatiosArePaired(t *testing.T) {
	ours := []float64{10, 100, 20}
	peer := []float64{30, 300, 60}
	i, j := 0, 0
	row := Compare(context.Background(), Config{Count: 3}, Comparison{
		Ours:     Side{"ours", func(context.Context, Config) (Sample, error) { i++; return Sample{NsPerOp: ours[i-1]}, nil }},
		Peer:     Side{"peer", func(context.Context, Config) (Sample, error) { j++; return Sample{NsPerOp: peer[j-1]}, nil }},
		MinRatio: 4,
	})
	require.Equal(t, []float64{3, 3, 3}, row.Ratios)
	require.Equal(t, 3.0, row.Ratio)
	require.Equal(t, 20.0, row.OursMed.NsPerOp)
	require.False(t, *row.Met)
}

func TestCompareSideFailureIsReported(t *testing.T) {
	row := Compare(context.Background(), Config{Count: 2}, Comparison{
		Ours: Side{"ours", func(context.Context, Config) (Sample, error) { return Sample{}, errors.New("boom") }},
		Peer: Side{"peer", func(context.Context, Config) (Sample, error) { return Sample{NsPerOp: 1}, nil }},
	})
	require.Equal(t, "ours failed: boom", row.Skipped)
	require.Nil(t, row.OursMed)
}
