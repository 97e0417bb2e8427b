package statusnote

// SetFanoutAbove lowers the fan-out threshold for a test and returns the
// function restoring it.
func SetFanoutAbove(n int) func() {
	old := fanoutAbove
	fanoutAbove = n
	return func() { fanoutAbove = old }
}
