package harness

// Target is the goal of one row: the ratio it must reach against its peer
// and, where the issue says so, a cap on our own figure.
type Target struct {
	// Row is the row's ID (RowID: group/case vs peer).
	Row string
	// Text is the goal as the issue writes it.
	Text string
	// MinRatio is the smallest ratio (peer ÷ ours) meeting the goal.
	MinRatio float64
	// MaxAllocs, when set, caps our median allocations per op.
	MaxAllocs float64
	// MaxOursNs, when set, caps our median time per op in the row's metric.
	MaxOursNs float64
	// Issue is the issue that set the goal.
	Issue int
}

// Targets is the one table the verdicts come from: the goals of issue 11
// (the transport engine and the QMP client) and issue 12 (the reactors and
// the frame decoder). A target whose row the report no longer makes fails
// TestEveryTargetHasItsRow.
var Targets = []Target{
	// Issue 12: the reactors against Mercurial 6.3, CPU time.
	{Row: RowID("reactor", "server: 1-frame request delivered", peerHgServer), Text: "≥ 30", MinRatio: 30, Issue: 12},
	{Row: RowID("reactor", "server: request → response bytes", peerHgServer), Text: "≥ 50", MinRatio: 50, Issue: 12},
	{Row: RowID("reactor", "client: response frame delivered", peerHgClient), Text: "≥ 30", MinRatio: 30, Issue: 12},
	{Row: RowID("frame", "decode 0 B", peerHgReadframe), Text: "≥ 60, ≤ 10 ns", MinRatio: 60, MaxOursNs: 10, Issue: 12},
	{Row: RowID("frame", "decode 64 B", peerHgReadframe), Text: "≥ 60, ≤ 10 ns", MinRatio: 60, MaxOursNs: 10, Issue: 12},

	// Issue 11: the transport engine at raw-socket cost.
	{Row: RowID("transport", "unix: bulk 32 KiB frames", rawName("unix")), Text: "≥ 0.95", MinRatio: 0.95, Issue: 11},
	{Row: RowID("transport", "tcp: bulk 32 KiB frames", rawName("tcp")), Text: "≥ 0.95", MinRatio: 0.95, Issue: 11},
	{Row: RowID("transport", "unix: 64 B frame round trip", rawName("unix")), Text: "≥ 0.9", MinRatio: 0.9, Issue: 11},
	{Row: RowID("transport", "tcp: 64 B frame round trip", rawName("tcp")), Text: "≥ 0.9", MinRatio: 0.9, Issue: 11},
	{Row: RowID("transport", "ws: 64 B frame round trip", rawName("ws")), Text: "≥ 0.9", MinRatio: 0.9, Issue: 11},
	{Row: RowID("transport", "ws: 64 B frame round trip", peerCoderWS), Text: "≥ 1", MinRatio: 1, Issue: 11},

	// Issue 11: the QMP client at a raw client's cost.
	{Row: RowID("qmp", qmpResponderSeq, peerBufio), Text: "≥ 0.85", MinRatio: 0.85, Issue: 11},
	{Row: RowID("qmp", qmpResponderSeq+CPUSuffix, peerBufio), Text: "≥ 0.91 (CPU ≤ 1.1×)", MinRatio: 1 / 1.1, Issue: 11},
	{Row: RowID("qmp", qmpQEMUSeq+CPUSuffix, peerBufio), Text: "≥ 0.91 (CPU ≤ 1.1×)", MinRatio: 1 / 1.1, Issue: 11},
	{Row: RowID("qmp", qmpResponderPar, peerRawMux), Text: "≥ 1", MinRatio: 1, Issue: 11},
	{Row: RowID("qmp", qmpResponderPar, BestName([]string{peerGoQEMU, peerGovmm})), Text: "≥ 5", MinRatio: 5, Issue: 11},
}

// TargetFor returns the target of the row with id.
func TargetFor(id string) (Target, bool) {
	for _, t := range Targets {
		if t.Row == id {
			return t, true
		}
	}
	return Target{}, false
}
