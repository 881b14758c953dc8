// Added to FerretDB's SQLite backend (package sqlite) by infra/store.py when it builds FerretDB.

package sqlite

import (
	"slices"
	"strings"

	"github.com/FerretDB/FerretDB/internal/backends"
)

// withUnbuilt returns `sizes` (the indexes SQLite has) with, at size 0, the collection's other indexes: those
// recorded without being built in SQLite (infra/store.py UNUSED_INDEXES). `names` maps each index's SQLite
// name to its own.
func withUnbuilt(sizes []backends.IndexSize, names map[string]string) []backends.IndexSize {
	built := make(map[string]bool, len(sizes))
	for _, s := range sizes {
		built[s.Name] = true
	}

	var unbuilt []backends.IndexSize

	for _, name := range names {
		if !built[name] {
			unbuilt = append(unbuilt, backends.IndexSize{Name: name})
		}
	}

	slices.SortFunc(unbuilt, func(a, b backends.IndexSize) int { return strings.Compare(a.Name, b.Name) })

	return append(sizes, unbuilt...)
}
