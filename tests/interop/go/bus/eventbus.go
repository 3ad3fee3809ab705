// Package bus is the seed's event bus (internal/platform/event/bus/kafka) in
// miniature: kafka-go writers per topic with Murmur2Balancer (so keys land
// where the Java client and librdkafka's murmur2 put them), Publish of an
// Event's ToJSON() and PublishRaw of bytes, no CloudEvents headers.
package bus

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"herald.test/interop/go/events"
)

type EventBus struct {
	brokers []string
	// KeyOf picks a record's key. Default: the event's GetEntityID().
	KeyOf   func(events.Event) string
	mu      sync.Mutex
	writers map[string]*kafka.Writer
}

func NewEventBus(brokers []string) *EventBus {
	return &EventBus{
		brokers: brokers,
		KeyOf:   func(e events.Event) string { return e.GetEntityID() },
		writers: map[string]*kafka.Writer{},
	}
}

func (b *EventBus) writer(topic string) *kafka.Writer {
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.writers[topic]
	if !ok {
		w = &kafka.Writer{
			Addr:                   kafka.TCP(b.brokers...),
			Topic:                  topic,
			Balancer:               &kafka.Murmur2Balancer{},
			RequiredAcks:           kafka.RequireAll,
			AllowAutoTopicCreation: true,
			BatchTimeout:           10 * time.Millisecond,
		}
		b.writers[topic] = w
	}
	return w
}

func (b *EventBus) Publish(ctx context.Context, topic string, event events.Event) error {
	data, err := event.ToJSON()
	if err != nil {
		return err
	}
	return b.writer(topic).WriteMessages(ctx, kafka.Message{Key: []byte(b.KeyOf(event)), Value: data})
}

// PublishRaw writes `data` as it is, with `key` (may be empty).
func (b *EventBus) PublishRaw(ctx context.Context, topic string, eventType string, data []byte, key string) error {
	msg := kafka.Message{Value: data}
	if key != "" {
		msg.Key = []byte(key)
	}
	return b.writer(topic).WriteMessages(ctx, msg)
}

// PublishKeyed writes many records at once (keys decide partitions).
func (b *EventBus) PublishKeyed(ctx context.Context, topic string, msgs []kafka.Message) error {
	return b.writer(topic).WriteMessages(ctx, msgs...)
}

func (b *EventBus) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.writers {
		w.Close()
	}
	return nil
}
