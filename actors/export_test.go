package actors

// SlicesRunning is how many slices run or wait to go on (suspended at a
// model call, or finishing a deferred commit): the count Close and WaitIdle
// wait for.
func (rt *Runtime) SlicesRunning() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.busy
}
