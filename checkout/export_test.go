package checkout

// SetParallel sets how many git processes a new checkout may use and the
// fewest files worth each, until the returned function restores them.
func SetParallel(workers, perWorker int) (restore func()) {
	w, p := checkoutWorkers, filesPerWorker
	checkoutWorkers, filesPerWorker = workers, perWorker
	return func() { checkoutWorkers, filesPerWorker = w, p }
}
