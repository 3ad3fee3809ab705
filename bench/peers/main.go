// Command peers runs the jobs of herald's benchmarks with Watermill, the
// peer herald's users compare it with, on the same broker and database, and
// prints one JSON object per line in the shape of herald's benchmarks
// (figures as {"min","median","max","rounds"} over the rounds):
//
//	peer_gochannel      GoChannel pub/sub of the in-process benchmark's
//	                    OrderPlaced event: JSON-encoded per event, decoded
//	                    by the subscriber, acked (inmemory_bench's job).
//	peer_kafka_publish  watermill-kafka's publisher (a sarama SyncProducer:
//	                    one round trip per Publish) with acks=all and
//	                    idempotence, from 1 goroutine and from -goroutines
//	                    goroutines (kafka_bench's publish job).
//	peer_kafka_consume  watermill-kafka's subscriber in a fresh consumer
//	                    group from the oldest offset, decoding each payload
//	                    and acking it (kafka_bench's consume job).
//	peer_sql_forwarder  watermill-sql's PostgreSQL outbox drained to Kafka by
//	                    Watermill's forwarder component (relay_bench's job).
//
// Settings made equal to herald's where Watermill has them: acks=all (sarama
// defaults to acks=1), idempotence, 1 ms linger (-linger), the oldest offset (sarama
// defaults to the newest), 64 keys, topics created up front.
//
//	HERALD_TEST_KAFKA_BROKERS=host:port HERALD_TEST_PG_DSN='host=... dbname=...' \
//	  peers -quick
package main

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/components/forwarder"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	_ "github.com/jackc/pgx/v5/stdlib"
)

// OrderPlaced is inmemory_bench's event, with the same JSON field names.
type OrderPlaced struct {
	OrderID     string `json:"order_id"`
	CustomerID  string `json:"customer_id"`
	AmountCents int64  `json:"amount_cents"`
	Currency    string `json:"currency"`
	SKU         string `json:"sku"`
	Quantity    int64  `json:"quantity"`
	Note        string `json:"note"`
}

func makeOrder(i int64) OrderPlaced {
	return OrderPlaced{
		OrderID:     fmt.Sprintf("order-%010d", i),
		CustomerID:  fmt.Sprintf("customer-%06d", i%1000),
		AmountCents: 1000 + i%100000,
		Currency:    "EUR",
		SKU:         "SKU-ABCDEFGH-1234",
		Quantity:    1 + i%5,
		Note:        "leave at the door, ring twice; fragile glassware inside, handle with care",
	}
}

// BenchEvent is kafka_bench's event: a key among 64 and padding to the size.
type BenchEvent struct {
	ID   string `json:"id"`
	Data string `json:"data"`
}

func makeEvent(i int, size int) BenchEvent {
	n := size - 150
	if n < 1 {
		n = 1
	}
	return BenchEvent{ID: fmt.Sprintf("key-%d", i%64), Data: strings.Repeat("x", n)}
}

// ---- statistics, as bench/bench_stats.h prints them ----

func spread(v []float64, digits int) string {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	var med float64
	if n := len(s); n > 0 {
		if n%2 == 1 {
			med = s[n/2]
		} else {
			med = (s[n/2-1] + s[n/2]) / 2
		}
	} else {
		s = []float64{0}
	}
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', digits, 64) }
	rounds := make([]string, len(v))
	for i, x := range v {
		rounds[i] = f(x)
	}
	return fmt.Sprintf(`{"min":%s,"median":%s,"max":%s,"rounds":[%s]}`, f(s[0]), f(med), f(s[len(s)-1]),
		strings.Join(rounds, ","))
}

func ratios(a, b []float64) []float64 {
	var r []float64
	for i := 0; i < len(a) && i < len(b); i++ {
		if b[i] > 0 {
			r = append(r, a[i]/b[i])
		} else {
			r = append(r, 0)
		}
	}
	return r
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "peers: "+format+"\n", args...)
	os.Exit(1)
}

var uniqueCounter int

func uniqueName(what string) string {
	uniqueCounter++
	return fmt.Sprintf("peer-%s-%d-%d", what, time.Now().UnixMilli(), uniqueCounter)
}

// ---- GoChannel ----

func runGoChannel(events int64, buffer int64) float64 {
	pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: buffer}, watermill.NopLogger{})
	defer pubSub.Close()
	messages, err := pubSub.Subscribe(context.Background(), "bench-orders")
	if err != nil {
		die("gochannel subscribe: %v", err)
	}
	var sink atomic.Int64
	done := make(chan struct{})
	go func() {
		var n int64
		for msg := range messages {
			var e OrderPlaced
			if err := json.Unmarshal(msg.Payload, &e); err == nil {
				sink.Add(e.AmountCents)
			}
			msg.Ack()
			n++
			if n == events {
				close(done)
				return
			}
		}
	}()
	start := time.Now()
	for i := int64(0); i < events; i++ {
		payload, err := json.Marshal(makeOrder(i))
		if err != nil {
			die("marshal: %v", err)
		}
		if err := pubSub.Publish("bench-orders", message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			die("gochannel publish: %v", err)
		}
	}
	<-done
	return float64(events) / time.Since(start).Seconds()
}

// ---- Kafka ----

func brokers() []string {
	b := os.Getenv("HERALD_TEST_KAFKA_BROKERS")
	if b == "" {
		die("HERALD_TEST_KAFKA_BROKERS is not set")
	}
	return strings.Split(b, ",")
}

// linger is herald's linger (librdkafka linger.ms) as sarama's flush
// frequency. A synchronous publisher waits for it on every message; 0 is
// sarama's default.
var linger = flag.Duration("linger", 1*time.Millisecond, "sarama Producer.Flush.Frequency (herald's linger)")

func saramaVersion(c *sarama.Config) { c.Version = sarama.V3_0_0_0 }

// The producer settings herald's KafkaTransport uses, as far as sarama has them.
func publisherConfig() *sarama.Config {
	c := kafka.DefaultSaramaSyncPublisherConfig()
	saramaVersion(c)
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1 // sarama requires it for idempotence
	c.Producer.Retry.Max = 10
	c.Producer.Flush.Frequency = *linger
	return c
}

func createTopic(topic string, partitions int) {
	c := sarama.NewConfig()
	saramaVersion(c)
	admin, err := sarama.NewClusterAdmin(brokers(), c)
	if err != nil {
		die("cluster admin: %v", err)
	}
	defer admin.Close()
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: int32(partitions), ReplicationFactor: 1}, false); err != nil {
		die("create topic %s: %v", topic, err)
	}
	time.Sleep(200 * time.Millisecond)
}

// Messages keyed like herald's (64 keys): the marshaler puts the key in the
// record key, so sarama's hash partitioner spreads them the same way.
func newKafkaPublisher() *kafka.Publisher {
	p, err := kafka.NewPublisher(kafka.PublisherConfig{
		Brokers:               brokers(),
		Marshaler:             kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) { return m.Metadata.Get("key"), nil }),
		OverwriteSaramaConfig: publisherConfig(),
	}, watermill.NopLogger{})
	if err != nil {
		die("kafka publisher: %v", err)
	}
	return p
}

func benchMessages(size int) []*message.Message {
	msgs := make([]*message.Message, 64)
	for i := range msgs {
		e := makeEvent(i, size)
		payload, _ := json.Marshal(e)
		msgs[i] = message.NewMessage("", payload)
		msgs[i].Metadata.Set("key", e.ID)
	}
	return msgs
}

// Publishes `count` messages from `goroutines` goroutines sharing one
// publisher; each message gets a new UUID and is encoded per publish.
func runKafkaPublish(count, size, goroutines, partitions int) float64 {
	topic := uniqueName("publish")
	createTopic(topic, partitions)
	p := newKafkaPublisher()
	defer p.Close()
	events := make([]BenchEvent, 64)
	for i := range events {
		events[i] = makeEvent(i, size)
	}
	publish := func(i int) {
		payload, err := json.Marshal(events[i%64])
		if err != nil {
			die("marshal: %v", err)
		}
		m := message.NewMessage(watermill.NewUUID(), payload)
		m.Metadata.Set("key", events[i%64].ID)
		if err := p.Publish(topic, m); err != nil {
			die("kafka publish: %v", err)
		}
	}
	publish(0) // warm up: metadata, producer id
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < count; i = int(next.Add(1) - 1) {
				publish(i)
			}
		}()
	}
	wg.Wait()
	return float64(count) / time.Since(start).Seconds()
}

// Fills a topic with `count` messages in watermill's format (the same
// marshaler), with an async producer so that filling is quick.
func fillTopic(topic string, count, size int) {
	c := publisherConfig()
	c.Producer.Return.Successes = false
	c.Producer.Return.Errors = true
	producer, err := sarama.NewAsyncProducer(brokers(), c)
	if err != nil {
		die("async producer: %v", err)
	}
	marshaler := kafka.NewWithPartitioningMarshaler(func(_ string, m *message.Message) (string, error) { return m.Metadata.Get("key"), nil })
	msgs := benchMessages(size)
	go func() {
		for err := range producer.Errors() {
			die("fill: %v", err)
		}
	}()
	for i := 0; i < count; i++ {
		m := msgs[i%64].Copy()
		m.UUID = watermill.NewUUID()
		pm, err := marshaler.Marshal(topic, m)
		if err != nil {
			die("marshal: %v", err)
		}
		producer.Input() <- pm
	}
	if err := producer.Close(); err != nil {
		die("fill close: %v", err)
	}
}

func runKafkaConsume(topic string, count int) float64 {
	c := kafka.DefaultSaramaSubscriberConfig()
	saramaVersion(c)
	c.Consumer.Offsets.Initial = sarama.OffsetOldest
	s, err := kafka.NewSubscriber(kafka.SubscriberConfig{
		Brokers:               brokers(),
		Unmarshaler:           kafka.DefaultMarshaler{},
		OverwriteSaramaConfig: c,
		ConsumerGroup:         uniqueName("group"),
	}, watermill.NopLogger{})
	if err != nil {
		die("kafka subscriber: %v", err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	messages, err := s.Subscribe(ctx, topic)
	if err != nil {
		die("subscribe: %v", err)
	}
	var first, last time.Time
	n := 0
	var sink int
	for msg := range messages {
		var e BenchEvent
		if err := json.Unmarshal(msg.Payload, &e); err == nil {
			sink += len(e.Data)
		}
		msg.Ack()
		if n == 0 {
			first = time.Now()
		}
		n++
		if n == count {
			last = time.Now()
			break
		}
	}
	if n < count {
		return 0
	}
	return float64(count-1) / last.Sub(first).Seconds()
}

// ---- SQL outbox forwarded to Kafka ----

// countingPublisher counts what the forwarder hands to Kafka.
type countingPublisher struct {
	message.Publisher
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (c *countingPublisher) Publish(topic string, msgs ...*message.Message) error {
	if err := c.Publisher.Publish(topic, msgs...); err != nil {
		return err
	}
	if c.n.Add(int64(len(msgs))) >= c.want {
		select {
		case <-c.done:
		default:
			close(c.done)
		}
	}
	return nil
}

// Appends `count` rows to watermill-sql's PostgreSQL outbox (through the
// forwarder's envelope, as an application would), then times the forwarder
// draining them to Kafka with watermill-kafka's publisher.
func runSQLForwarder(count, size, partitions int) float64 {
	dsn := os.Getenv("HERALD_TEST_PG_DSN")
	if dsn == "" {
		die("HERALD_TEST_PG_DSN is not set")
	}
	db, err := stdsql.Open("pgx", dsn)
	if err != nil {
		die("open: %v", err)
	}
	defer db.Close()
	outboxTopic := strings.ReplaceAll(uniqueName("outbox"), "-", "_")
	kafkaTopic := uniqueName("forwarded")
	createTopic(kafkaTopic, partitions)
	sqlPublisher, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db), wsql.PublisherConfig{
		SchemaAdapter:        wsql.DefaultPostgreSQLSchema{},
		AutoInitializeSchema: true,
	}, watermill.NopLogger{})
	if err != nil {
		die("sql publisher: %v", err)
	}
	outbox := forwarder.NewPublisher(sqlPublisher, forwarder.PublisherConfig{ForwarderTopic: outboxTopic})
	msgs := benchMessages(size)
	const batch = 500
	for i := 0; i < count; i += batch {
		var b []*message.Message
		for j := i; j < count && j < i+batch; j++ {
			m := msgs[j%64].Copy()
			m.UUID = watermill.NewUUID()
			b = append(b, m)
		}
		if err := outbox.Publish(kafkaTopic, b...); err != nil {
			die("outbox append: %v", err)
		}
	}
	subscriber, err := wsql.NewSubscriber(wsql.BeginnerFromStdSQL(db), wsql.SubscriberConfig{
		ConsumerGroup:    "forwarder",
		SchemaAdapter:    wsql.DefaultPostgreSQLSchema{},
		OffsetsAdapter:   wsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
	}, watermill.NopLogger{})
	if err != nil {
		die("sql subscriber: %v", err)
	}
	kafkaPublisher := newKafkaPublisher()
	counting := &countingPublisher{Publisher: kafkaPublisher, want: int64(count), done: make(chan struct{})}
	fwd, err := forwarder.NewForwarder(subscriber, counting, watermill.NopLogger{}, forwarder.Config{ForwarderTopic: outboxTopic})
	if err != nil {
		die("forwarder: %v", err)
	}
	start := time.Now()
	go func() { _ = fwd.Run(context.Background()) }()
	select {
	case <-counting.done:
	case <-time.After(300 * time.Second):
		die("forwarder: %d of %d forwarded after 300 s", counting.n.Load(), count)
	}
	elapsed := time.Since(start)
	_ = fwd.Close()
	_ = kafkaPublisher.Close()
	return float64(count) / elapsed.Seconds()
}

func intList(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			out = append(out, v)
		}
	}
	return out
}

func main() {
	quick := flag.Bool("quick", false, "smaller runs and 3 rounds")
	rounds := flag.Int("rounds", 0, "rounds (default 5, 3 with -quick)")
	jobs := flag.String("jobs", "gochannel,kafka-publish,kafka-consume,sql-forwarder", "jobs to run")
	sizes := flag.String("sizes", "100,1024,10240", "record sizes (bytes) for the Kafka jobs")
	goroutines := flag.Int("goroutines", 64, "concurrent publishers in the many-goroutine publish run")
	publishPartitions := flag.Int("publish_partitions", 4, "partitions of publish topics")
	consumePartitions := flag.String("consume_partitions", "1,6", "partitions of consume topics")
	buffer := flag.Int64("gochannel_buffer", 40000, "GoChannel OutputChannelBuffer (inmemory_bench's queue holds 40000)")
	flag.Parse()
	if *rounds <= 0 {
		*rounds = 5
		if *quick {
			*rounds = 3
		}
	}
	scale := func(full, quickCount int) int {
		if *quick {
			return quickCount
		}
		return full
	}
	want := map[string]bool{}
	for _, j := range strings.Split(*jobs, ",") {
		want[strings.TrimSpace(j)] = true
	}
	fmt.Printf(`{"bench":"peer_settings","peer":"watermill","acks":"all","idempotence":true,"linger_ms":%d,"keys":64,"publish_partitions":%d,"goroutines":%d,"gochannel_buffer":%d,"auto_offset_reset":"oldest","rounds":%d,"statistic":"min/median/max"}`+"\n",
		linger.Milliseconds(), *publishPartitions, *goroutines, *buffer, *rounds)

	if want["gochannel"] {
		events := int64(scale(1000000, 200000))
		var v []float64
		for r := 0; r < *rounds; r++ {
			v = append(v, runGoChannel(events, *buffer))
		}
		fmt.Printf(`{"bench":"peer_gochannel","events":%d,"watermill_gochannel_per_s":%s}`+"\n", events, spread(v, 0))
	}
	for _, size := range intList(*sizes) {
		div := 1
		if size >= 102400 {
			div = 50
		} else if size >= 10240 {
			div = 5
		} else if size >= 1024 {
			div = 2
		}
		if want["kafka-publish"] {
			// The synchronous publisher takes a round trip per message.
			single := scale(5000, 1000) / div
			many := scale(50000, 5000) / div
			var one, concurrent []float64
			for r := 0; r < *rounds; r++ {
				if r%2 == 0 {
					one = append(one, runKafkaPublish(single, size, 1, *publishPartitions))
					concurrent = append(concurrent, runKafkaPublish(many, size, *goroutines, *publishPartitions))
				} else {
					concurrent = append(concurrent, runKafkaPublish(many, size, *goroutines, *publishPartitions))
					one = append(one, runKafkaPublish(single, size, 1, *publishPartitions))
				}
			}
			fmt.Printf(`{"bench":"peer_kafka_publish","message_bytes":%d,"messages":%d,"concurrent_messages":%d,"goroutines":%d,"partitions":%d,"watermill_sync_per_s":%s,"watermill_concurrent_per_s":%s,"ratio_concurrent_over_sync":%s}`+"\n",
				size, single, many, *goroutines, *publishPartitions, spread(one, 0), spread(concurrent, 0), spread(ratios(concurrent, one), 3))
		}
		if want["kafka-consume"] {
			count := scale(200000, 20000) / div
			for _, partitions := range intList(*consumePartitions) {
				topic := uniqueName("consume")
				createTopic(topic, partitions)
				fillTopic(topic, count, size)
				var v []float64
				for r := 0; r < *rounds; r++ {
					v = append(v, runKafkaConsume(topic, count))
				}
				fmt.Printf(`{"bench":"peer_kafka_consume","message_bytes":%d,"messages":%d,"partitions":%d,"watermill_per_s":%s}`+"\n",
					size, count, partitions, spread(v, 0))
			}
		}
	}
	if want["sql-forwarder"] {
		count := scale(30000, 5000)
		var v []float64
		for r := 0; r < *rounds; r++ {
			v = append(v, runSQLForwarder(count, 200, *publishPartitions))
		}
		fmt.Printf(`{"bench":"peer_sql_forwarder","events":%d,"payload_bytes":200,"partitions":%d,"watermill_sql_forwarder_per_s":%s}`+"\n",
			count, *publishPartitions, spread(v, 0))
	}
}
