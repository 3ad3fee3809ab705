// Package outbox is the seed's outbox Writer (internal/platform/outbox):
// the 3-column INSERT of evt.ToJSON() inside the caller's transaction. The
// table is configurable here (the seed hard-codes outbox.outbox).
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/lib/pq"

	"herald.test/interop/go/events"
)

var ErrWriteFailed = errors.New("outbox write failed")

type Writer struct {
	query string
}

// NewWriter writes to `table` ("schema.table" or "table").
func NewWriter(table string) *Writer {
	parts := strings.Split(table, ".")
	for i, p := range parts {
		parts[i] = pq.QuoteIdentifier(p)
	}
	return &Writer{query: fmt.Sprintf(`
        INSERT INTO %s (event_type, topic, event_payload)
        VALUES ($1, $2, $3)
    `, strings.Join(parts, "."))}
}

func (w *Writer) WriteEvent(ctx context.Context, tx *sql.Tx, evt events.Event) error {
	if tx == nil {
		return errors.New("tx must be non-nil")
	}

	payload, err := evt.ToJSON()
	if err != nil {
		return err
	}

	_, err = tx.ExecContext(ctx, w.query, evt.Type(), evt.Topic(), payload)
	if err != nil {
		return fmt.Errorf("%w: failed to write event to outbox: %v", ErrWriteFailed, err)
	}

	return nil
}
