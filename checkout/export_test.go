package checkout

// SetParallel sets how many git processes a new checkout may use and the
// fewest files worth each, until the returned function restores them.
func SetParallel(workers, perWorker int) (restore func()) {
	w, p := checkoutWorkers, filesPerWorker
	checkoutWorkers, filesPerWorker = workers, perWorker
	return func() { checkoutWorkers, filesPerWorker = w, p }
}

// SetMoveByReadTree has marked trees moved by a two-tree read-tree rather
// than by moveByDiff, until the returned function restores it.
func SetMoveByReadTree(on bool) (restore func()) {
	old := moveByReadTree
	moveByReadTree = on
	return func() { moveByReadTree = old }
}
