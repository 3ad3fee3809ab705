// interop-go: the seed's Go services in miniature, driven by run.sh to check
// that herald reads and relays what they write and that they read what
// herald writes. Each subcommand prints what it checked and exits non-zero
// on any mismatch.
//
//	write-outbox  --dsn-env V --table S.T --n N --out F   Go outbox Writer, one tx per event
//	publish       --brokers B --topic T --n N --out F     Go bus Publish (kafka-go, Murmur2Balancer)
//	read          --brokers B --topic T --expect F [--key-from-customer]
//	                                                      kafka-go reader -> CustomerEventFactory.FromJSON
//	produce-keys  --brokers B --topic T --keys F --tag S  one record per key, Murmur2Balancer
//	create-topic  --brokers B --topic T --partitions P
//	partitions    --brokers B --topic T --keys F --tags a,b,c
//	                                                      each key on the same partition from every producer
package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/lib/pq"
	"github.com/segmentio/kafka-go"

	"herald.test/interop/go/bus"
	"herald.test/interop/go/events"
	"herald.test/interop/go/outbox"
)

// Expected is one line of an expectations file shared with the herald peer:
// what the producer sent, for the consumer to check.
type Expected struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Timestamp  string            `json:"timestamp"`
	CustomerID string            `json:"customer_id"`
	Details    map[string]string `json:"details"`
	Key        string            `json:"key"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "interop-go: FAIL: "+format+"\n", args...)
	os.Exit(1)
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

// sampleEvent is event i of a run: every third one has nil details (Go
// writes null), the others a map with HTML and non-ASCII text (Go escapes
// <, > and &).
func sampleEvent(prefix string, i int) *events.CustomerEvent {
	var details map[string]string
	if i%3 != 2 {
		details = map[string]string{"name": fmt.Sprintf("Zoë <%d> & co", i), "tier": "gold"}
	}
	evt := events.NewCustomerCreatedEvent(fmt.Sprintf("%s-cust-%d", prefix, i%5), details)
	if i%4 == 1 {
		evt.EventType = events.CustomerUpdated
	}
	if i%2 == 1 {
		// A local offset, as time.Now() in a non-UTC zone marshals it.
		evt.Timestamp = evt.Timestamp.In(time.FixedZone("CET", 3600))
	}
	return evt
}

func expectedOf(evt *events.CustomerEvent, key string) Expected {
	return Expected{ID: evt.ID, Type: evt.Type(), Timestamp: evt.Timestamp.Format(time.RFC3339Nano),
		CustomerID: evt.EventPayload.CustomerID, Details: evt.EventPayload.Details, Key: key}
}

func writeExpectations(path string, exp []Expected) {
	f, err := os.Create(path)
	must(err, "create "+path)
	defer f.Close()
	enc := json.NewEncoder(f)
	for _, e := range exp {
		must(enc.Encode(e), "write "+path)
	}
}

func readExpectations(path string) []Expected {
	f, err := os.Open(path)
	must(err, "open "+path)
	defer f.Close()
	var out []Expected
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e Expected
		must(json.Unmarshal(sc.Bytes(), &e), "parse "+path)
		out = append(out, e)
	}
	return out
}

func readLines(path string) []string {
	data, err := os.ReadFile(path)
	must(err, "read "+path)
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func writeOutbox(dsnEnv, table, prefix string, n int, out string) {
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		fail("environment variable %s is not set", dsnEnv)
	}
	if !strings.Contains(dsn, "sslmode") && !strings.Contains(dsn, "://") {
		// libpq (herald) defaults to sslmode=prefer; lib/pq to require. The
		// test servers are plain loopback ones.
		dsn += " sslmode=disable"
	}
	db, err := sql.Open("postgres", dsn)
	must(err, "open PostgreSQL")
	defer db.Close()
	ctx := context.Background()
	writer := outbox.NewWriter(table)
	var exp []Expected
	for i := 0; i < n; i++ {
		evt := sampleEvent(prefix, i)
		// The seed's repository pattern: begin, defer rollback, write, commit.
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return fmt.Errorf("failed to begin transaction: %w", err)
			}
			committed := false
			defer func() {
				if !committed {
					_ = tx.Rollback()
				}
			}()
			if err := writer.WriteEvent(ctx, tx, evt); err != nil {
				return err
			}
			if err := tx.Commit(); err != nil {
				return err
			}
			committed = true
			return nil
		}()
		must(err, "write outbox row")
		exp = append(exp, expectedOf(evt, evt.EventPayload.CustomerID))
	}
	// One rolled-back transaction: its row must never be relayed.
	tx, err := db.BeginTx(ctx, nil)
	must(err, "begin")
	must(writer.WriteEvent(ctx, tx, events.NewCustomerCreatedEvent("rolled-back", nil)), "write")
	must(tx.Rollback(), "rollback")
	writeExpectations(out, exp)
	fmt.Printf("interop-go: wrote %d outbox rows into %s with the seed's 3-column INSERT (+1 rolled back)\n", n, table)
}

func publish(brokers, topic, prefix string, n int, out string) {
	b := bus.NewEventBus(strings.Split(brokers, ","))
	defer b.Close()
	b.KeyOf = func(e events.Event) string { return e.(*events.CustomerEvent).EventPayload.CustomerID }
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var exp []Expected
	for i := 0; i < n; i++ {
		evt := sampleEvent(prefix, i)
		must(b.Publish(ctx, topic, evt), "publish")
		exp = append(exp, expectedOf(evt, evt.EventPayload.CustomerID))
	}
	// The seed's PublishRaw of a whole envelope, as its outbox publisher does.
	raw := sampleEvent(prefix, n)
	data, err := raw.ToJSON()
	must(err, "marshal")
	must(b.PublishRaw(ctx, topic, raw.Type(), data, raw.EventPayload.CustomerID), "publish raw")
	exp = append(exp, expectedOf(raw, raw.EventPayload.CustomerID))
	writeExpectations(out, exp)
	fmt.Printf("interop-go: published %d CustomerEvents to %s with kafka-go (Murmur2Balancer; %d Publish, 1 PublishRaw)\n",
		len(exp), topic, n)
}

// readAll reads every record of every partition of `topic` until `want`
// records arrived or `timeout` passed.
func readAll(brokers []string, topic string, want int, timeout time.Duration) []kafka.Message {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := kafka.DialContext(ctx, "tcp", brokers[0])
	must(err, "dial")
	parts, err := conn.ReadPartitions(topic)
	conn.Close()
	must(err, "partitions of "+topic)
	msgs := make(chan kafka.Message, want+16)
	for _, p := range parts {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID, MinBytes: 1,
			MaxBytes: 10 << 20, MaxWait: 100 * time.Millisecond})
		r.SetOffset(kafka.FirstOffset)
		go func(r *kafka.Reader) {
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				msgs <- m
			}
		}(r)
	}
	var out []kafka.Message
	for len(out) < want {
		select {
		case m := <-msgs:
			out = append(out, m)
		case <-ctx.Done():
			return out
		}
	}
	// Anything beyond `want` (a duplicate, a stray record) shows up in a short grace period.
	grace := time.After(500 * time.Millisecond)
	for {
		select {
		case m := <-msgs:
			out = append(out, m)
		case <-grace:
			return out
		}
	}
}

func read(brokers, topic, expectPath string, checkKey bool) {
	exp := readExpectations(expectPath)
	msgs := readAll(strings.Split(brokers, ","), topic, len(exp), 60*time.Second)
	byID := map[string]Expected{}
	for _, e := range exp {
		byID[e.ID] = e
	}
	factory := events.CustomerEventFactory{}
	seen := map[string]bool{}
	var problems []string
	ceHeaders := 0
	for _, m := range msgs {
		evt, err := factory.FromJSON(m.Value)
		if err != nil {
			problems = append(problems, fmt.Sprintf("offset %d: FromJSON: %v", m.Offset, err))
			continue
		}
		e, ok := byID[evt.ID]
		if !ok {
			problems = append(problems, fmt.Sprintf("unexpected id %q (value %s)", evt.ID, m.Value))
			continue
		}
		if seen[evt.ID] {
			problems = append(problems, "duplicate id "+evt.ID)
		}
		seen[evt.ID] = true
		want, err := time.Parse(time.RFC3339Nano, e.Timestamp)
		must(err, "expected timestamp")
		if !evt.Timestamp.Equal(want) {
			problems = append(problems, fmt.Sprintf("%s: timestamp %s, want %s", evt.ID, evt.Timestamp.Format(time.RFC3339Nano), e.Timestamp))
		}
		if string(evt.EventType) != e.Type || evt.EventPayload.CustomerID != e.CustomerID ||
			!sameDetails(evt.EventPayload.Details, e.Details) {
			problems = append(problems, fmt.Sprintf("%s: decoded %+v, want %+v", evt.ID, evt, e))
		}
		if checkKey && string(m.Key) != e.Key {
			problems = append(problems, fmt.Sprintf("%s: key %q, want %q", evt.ID, m.Key, e.Key))
		}
		for _, h := range m.Headers {
			if h.Key == "ce_id" {
				ceHeaders++
				if string(h.Value) != evt.ID {
					problems = append(problems, fmt.Sprintf("%s: ce_id header %q", evt.ID, h.Value))
				}
			}
		}
	}
	if len(seen) != len(exp) {
		problems = append(problems, fmt.Sprintf("%d of %d expected ids arrived", len(seen), len(exp)))
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  "+p)
		}
		fail("kafka-go reader on %s: %d problems", topic, len(problems))
	}
	fmt.Printf("interop-go: kafka-go reader decoded %d/%d records on %s into CustomerEvent: ids, types, "+
		"timestamps (time.Time), customer ids and details match%s; %d carry ce_id\n",
		len(seen), len(exp), topic, map[bool]string{true: ", keys match", false: ""}[checkKey], ceHeaders)
}

func sameDetails(a, b map[string]string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func createTopic(brokers, topic string, partitions int) {
	conn, err := kafka.Dial("tcp", strings.Split(brokers, ",")[0])
	must(err, "dial")
	defer conn.Close()
	controller, err := conn.Controller()
	must(err, "controller")
	cc, err := kafka.Dial("tcp", net.JoinHostPort(controller.Host, strconv.Itoa(controller.Port)))
	must(err, "dial controller")
	defer cc.Close()
	must(cc.CreateTopics(kafka.TopicConfig{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}), "create "+topic)
	// Wait until the new topic's partitions are known.
	for i := 0; i < 100; i++ {
		parts, err := conn.ReadPartitions(topic)
		if err == nil && len(parts) == partitions {
			fmt.Printf("interop-go: created %s with %d partitions\n", topic, partitions)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fail("topic %s did not get %d partitions", topic, partitions)
}

func produceKeys(brokers, topic, keysPath, tag string) {
	b := bus.NewEventBus(strings.Split(brokers, ","))
	defer b.Close()
	var msgs []kafka.Message
	for _, k := range readLines(keysPath) {
		msgs = append(msgs, kafka.Message{Key: []byte(k), Value: []byte(tag)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	must(b.PublishKeyed(ctx, topic, msgs), "produce keys")
	fmt.Printf("interop-go: kafka-go (Murmur2Balancer) produced %d keyed records to %s\n", len(msgs), topic)
}

func partitions(brokers, topic, keysPath, tagList string) {
	keys := readLines(keysPath)
	tags := strings.Split(tagList, ",")
	msgs := readAll(strings.Split(brokers, ","), topic, len(keys)*len(tags), 60*time.Second)
	// key -> tag -> partition
	got := map[string]map[string]int{}
	for _, m := range msgs {
		k := string(m.Key)
		if got[k] == nil {
			got[k] = map[string]int{}
		}
		got[k][producerOf(m.Value)] = m.Partition
	}
	var problems []string
	lengths := map[int]int{}
	utf8 := 0
	for _, k := range keys {
		lengths[len(k)%4]++
		if strings.IndexFunc(k, func(r rune) bool { return r > 127 }) >= 0 {
			utf8++
		}
		var first string
		for _, t := range tags {
			p, ok := got[k][t]
			if !ok {
				problems = append(problems, fmt.Sprintf("key %q: no record from %s", k, t))
				continue
			}
			if first == "" {
				first = t
			} else if p != got[k][first] {
				problems = append(problems, fmt.Sprintf("key %q: partition %d from %s, %d from %s", k, got[k][first], first, p, t))
			}
		}
	}
	var ls []string
	for m := 0; m < 4; m++ {
		ls = append(ls, fmt.Sprintf("len%%4=%d: %d", m, lengths[m]))
	}
	sort.Strings(ls)
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "  "+p)
		}
		fail("partitions on %s: %d problems", topic, len(problems))
	}
	used := map[int]bool{}
	for _, byTag := range got {
		for _, p := range byTag {
			used[p] = true
		}
	}
	fmt.Printf("interop-go: %d keys (%s; %d UTF-8) land on the same partition from %s (%d records, %d partitions used)\n",
		len(keys), strings.Join(ls, ", "), utf8, strings.Join(tags, ", "), len(msgs), len(used))
}

// producerOf names the producer of a keyed record: its value, or for a
// herald record (a JSON envelope) its event type.
func producerOf(value []byte) string {
	var env struct {
		Type string `json:"type"`
	}
	if len(value) > 0 && value[0] == '{' && json.Unmarshal(value, &env) == nil && env.Type != "" {
		return env.Type
	}
	return string(value)
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: interop-go write-outbox|publish|read|produce-keys|partitions [flags]")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	brokers := fs.String("brokers", "", "Kafka bootstrap servers")
	topic := fs.String("topic", "customer-events", "topic")
	dsnEnv := fs.String("dsn-env", "HERALD_TEST_PG_DSN", "environment variable holding the PostgreSQL DSN")
	table := fs.String("table", "outbox.outbox", "outbox table, schema.table")
	n := fs.Int("n", 10, "events")
	prefix := fs.String("prefix", "go", "customer id prefix")
	out := fs.String("out", "", "expectations file to write")
	expect := fs.String("expect", "", "expectations file to check")
	checkKey := fs.Bool("check-key", false, "check each record's key")
	keys := fs.String("keys", "", "file of keys, one per line")
	tag := fs.String("tag", "go", "value of each keyed record")
	tags := fs.String("tags", "go", "producers to compare")
	partitionCount := fs.Int("partitions", 6, "partitions of a new topic")
	must(fs.Parse(os.Args[2:]), "flags")
	switch os.Args[1] {
	case "create-topic":
		createTopic(*brokers, *topic, *partitionCount)
	case "write-outbox":
		events.CustomerTopic = *topic
		writeOutbox(*dsnEnv, *table, *prefix, *n, *out)
	case "publish":
		events.CustomerTopic = *topic
		publish(*brokers, *topic, *prefix, *n, *out)
	case "read":
		read(*brokers, *topic, *expect, *checkKey)
	case "produce-keys":
		produceKeys(*brokers, *topic, *keys, *tag)
	case "partitions":
		partitions(*brokers, *topic, *keys, *tags)
	default:
		must(errors.New("unknown command "+os.Args[1]), "usage")
	}
}
