// Clients from before record batches (message format v0 and v1), as Debian packages them: segmentio/kafka-go 0.2.1
// (Produce v2 with magic 1, Fetch v2, ListOffsets v1, a consumer group on JoinGroup v1 / SyncGroup v0 / OffsetCommit v2)
// and Shopify/sarama 1.22.1 set to Kafka 0.8.2 (Produce v0 with magic 0, Fetch v0, ListOffsets v0, Metadata v0) and to
// Kafka 0.10.0 (Produce v2 with snappy-compressed magic 1 sets, Fetch v2). Prints PASS/FAIL lines for run.sh.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Shopify/sarama"
	kafka "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/gzip"
)

var failed = 0

func check(name string, f func() (string, error)) {
	detail, err := f()
	if err != nil {
		failed++
		fmt.Printf("FAIL go-legacy %s: %s\n", name, strings.Split(err.Error(), "\n")[0])
		return
	}
	fmt.Printf("PASS go-legacy %s: %s\n", name, detail)
}

func main() {
	bootstrap := os.Getenv("BOOTSTRAP")
	run := fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid())
	kgTopic := "go-legacy-kafkago-" + run
	saramaTopic := "go-legacy-sarama-" + run
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	check("kafka-go-create-topics", func() (string, error) {
		conn, err := kafka.Dial("tcp", bootstrap)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		err = conn.CreateTopics(
			kafka.TopicConfig{Topic: kgTopic, NumPartitions: 1, ReplicationFactor: 1},
			kafka.TopicConfig{Topic: saramaTopic, NumPartitions: 1, ReplicationFactor: 1})
		return kgTopic + ", " + saramaTopic, err
	})

	check("kafka-go-produce-v2", func() (string, error) {
		conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, kgTopic, 0)
		if err != nil {
			return "", err
		}
		defer conn.Close()
		var plain, gzipped []kafka.Message
		for i := 0; i < 10; i++ {
			plain = append(plain, kafka.Message{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("plain-%d", i))})
			gzipped = append(gzipped, kafka.Message{Key: []byte(fmt.Sprintf("k%d", 10+i)), Value: []byte(fmt.Sprintf("gzip-%d", i))})
		}
		if _, err := conn.WriteMessages(plain...); err != nil {
			return "", fmt.Errorf("plain: %v", err)
		}
		if _, err := conn.WriteCompressedMessages(gzip.NewCompressionCodec(), gzipped...); err != nil {
			return "", fmt.Errorf("gzip: %v", err)
		}
		first, err := conn.ReadFirstOffset()
		if err != nil {
			return "", err
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			return "", err
		}
		if first != 0 || last != 20 {
			return "", fmt.Errorf("offsets %d..%d, expected 0..20", first, last)
		}
		return "10 plain and 10 gzip messages (magic 1) acknowledged; ListOffsets v1 gives 0..20", nil
	})

	check("kafka-go-group-fetch-v2", func() (string, error) {
		reader := kafka.NewReader(kafka.ReaderConfig{
			Brokers: []string{bootstrap}, GroupID: "go-legacy-" + run, Topic: kgTopic,
			MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 500 * time.Millisecond,
			SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second, HeartbeatInterval: time.Second,
		})
		defer reader.Close()
		var values []string
		for i := 0; i < 20; i++ {
			m, err := reader.ReadMessage(ctx)
			if err != nil {
				return "", fmt.Errorf("after %d messages: %v", i, err)
			}
			if m.Offset != int64(i) || string(m.Key) != fmt.Sprintf("k%d", i) {
				return "", fmt.Errorf("message %d: offset %d key %q", i, m.Offset, m.Key)
			}
			values = append(values, string(m.Value))
		}
		if values[0] != "plain-0" || values[19] != "gzip-9" {
			return "", fmt.Errorf("values %v", values)
		}
		return "a group member (JoinGroup v1, SyncGroup v0) read and committed all 20 in order, gzip ones uncompressed", nil
	})

	produce := func(version sarama.KafkaVersion, codec sarama.CompressionCodec, prefix string) (string, error) {
		config := sarama.NewConfig()
		config.Version = version
		config.Producer.Return.Successes = true
		config.Producer.RequiredAcks = sarama.WaitForAll
		config.Producer.Compression = codec
		producer, err := sarama.NewSyncProducer([]string{bootstrap}, config)
		if err != nil {
			return "", err
		}
		defer producer.Close()
		var msgs []*sarama.ProducerMessage
		for i := 0; i < 5; i++ {
			msgs = append(msgs, &sarama.ProducerMessage{Topic: saramaTopic, Key: sarama.StringEncoder(fmt.Sprintf("%s-key-%d", prefix, i)),
				Value: sarama.StringEncoder(fmt.Sprintf("%s-%d", prefix, i)), Timestamp: time.Unix(1700000000, int64(i)*int64(time.Millisecond))})
		}
		if err := producer.SendMessages(msgs); err != nil {
			return "", err
		}
		return fmt.Sprintf("5 messages acknowledged, offsets %d..%d", msgs[0].Offset, msgs[4].Offset), nil
	}
	check("sarama-0.8.2-produce-v0-magic-0", func() (string, error) { return produce(sarama.V0_8_2_0, sarama.CompressionNone, "v08") })
	check("sarama-0.10.0-produce-v2-snappy-magic-1", func() (string, error) { return produce(sarama.V0_10_0_0, sarama.CompressionSnappy, "v010") })

	consume := func(version sarama.KafkaVersion) ([]*sarama.ConsumerMessage, int64, error) {
		config := sarama.NewConfig()
		config.Version = version
		client, err := sarama.NewClient([]string{bootstrap}, config)
		if err != nil {
			return nil, 0, err
		}
		defer client.Close()
		newest, err := client.GetOffset(saramaTopic, 0, sarama.OffsetNewest)
		if err != nil {
			return nil, 0, err
		}
		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			return nil, 0, err
		}
		defer consumer.Close()
		pc, err := consumer.ConsumePartition(saramaTopic, 0, sarama.OffsetOldest)
		if err != nil {
			return nil, 0, err
		}
		defer pc.Close()
		var got []*sarama.ConsumerMessage
		for len(got) < 10 {
			select {
			case m := <-pc.Messages():
				got = append(got, m)
			case e := <-pc.Errors():
				return nil, 0, e
			case <-time.After(20 * time.Second):
				return nil, 0, fmt.Errorf("read %d of 10 messages", len(got))
			}
		}
		return got, newest, nil
	}
	expect := func(got []*sarama.ConsumerMessage) error {
		for i, m := range got {
			prefix, n := "v08", i
			if i >= 5 {
				prefix, n = "v010", i-5
			}
			if m.Offset != int64(i) || string(m.Value) != fmt.Sprintf("%s-%d", prefix, n) || string(m.Key) != fmt.Sprintf("%s-key-%d", prefix, n) {
				return fmt.Errorf("message %d: offset %d key %q value %q", i, m.Offset, m.Key, m.Value)
			}
		}
		return nil
	}
	check("sarama-0.8.2-fetch-v0-list-offsets-v0", func() (string, error) {
		got, newest, err := consume(sarama.V0_8_2_0)
		if err != nil {
			return "", err
		}
		if newest != 10 {
			return "", fmt.Errorf("newest offset %d, expected 10", newest)
		}
		return "ListOffsets v0 newest 10; Fetch v0 read all 10 in order (magic 0)", expect(got)
	})
	check("sarama-0.10.0-fetch-v2-timestamps", func() (string, error) {
		got, _, err := consume(sarama.V0_10_0_0)
		if err != nil {
			return "", err
		}
		if err := expect(got); err != nil {
			return "", err
		}
		if ts := got[7].Timestamp.UnixNano() / int64(time.Millisecond); ts != 1700000000002 {
			return "", fmt.Errorf("message 7 timestamp %d, expected 1700000000002", ts)
		}
		return "Fetch v2 read all 10 (magic 1), the 0.10 producer's timestamps kept", nil
	})

	if failed > 0 {
		os.Exit(1)
	}
	fmt.Println("go-legacy: all checks passed")
}
