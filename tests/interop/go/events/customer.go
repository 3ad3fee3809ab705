// Package events is the seed's event contract (internal/contracts/events),
// as the seed's Go services define it: herald's interop test writes, publishes
// and decodes exactly these structs.
package events

import (
	"encoding/json"
	"time"

	"github.com/google/uuid"
)

// Event is the seed's base event interface.
type Event interface {
	Type() string
	Topic() string
	Payload() any
	ToJSON() ([]byte, error)
	GetEntityID() string
	GetResourceID() string
}

// EventFactory deserializes events.
type EventFactory[T Event] interface {
	FromJSON([]byte) (T, error)
}

// CustomerTopic is "customer-events" in the seed; the test gives each run
// its own topic. It is not part of the JSON.
var CustomerTopic = "customer-events"

// EventType is a typed string for well-known customer events.
type EventType string

const (
	CustomerCreated EventType = "customer.created"
	CustomerUpdated EventType = "customer.updated"
	CustomerDeleted EventType = "customer.deleted"
)

// CustomerEventPayload is the payload of every customer event.
type CustomerEventPayload struct {
	CustomerID string            `json:"customer_id"`
	Details    map[string]string `json:"details"`
}

// CustomerEvent represents a customer-related event.
type CustomerEvent struct {
	ID           string               `json:"id"`
	EventType    EventType            `json:"type"`
	Timestamp    time.Time            `json:"timestamp"`
	EventPayload CustomerEventPayload `json:"payload"`
}

func (e CustomerEvent) Type() string            { return string(e.EventType) }
func (e CustomerEvent) Topic() string           { return CustomerTopic }
func (e CustomerEvent) Payload() any            { return e.EventPayload }
func (e CustomerEvent) ToJSON() ([]byte, error) { return json.Marshal(e) }
func (e CustomerEvent) GetEntityID() string     { return e.ID }
func (e CustomerEvent) GetResourceID() string   { return e.ID }

// CustomerEventFactory implements EventFactory.
type CustomerEventFactory struct{}

func (f CustomerEventFactory) FromJSON(data []byte) (CustomerEvent, error) {
	var event CustomerEvent
	err := json.Unmarshal(data, &event)
	return event, err
}

// NewCustomerCreatedEvent is the seed's convenience constructor.
func NewCustomerCreatedEvent(customerID string, details map[string]string) *CustomerEvent {
	return &CustomerEvent{
		ID:        uuid.New().String(),
		EventType: CustomerCreated,
		Timestamp: time.Now(),
		EventPayload: CustomerEventPayload{
			CustomerID: customerID,
			Details:    details,
		},
	}
}
