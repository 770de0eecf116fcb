// Publishes streamgauge measurements from Java: Avro single-object encoding with Apache Avro's
// BinaryMessageEncoder (C3 01, the schema's CRC-64-AVRO fingerprint, the body), keyed by device
// id with the Kafka client's default partitioner (murmur2: the partition streamgauge expects).
//
// Usage: MeasurementProducer BOOTSTRAP TOPIC SCHEMA.avsc COUNT [DEVICES [FIRST_SEQ]]

import java.io.File;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.message.BinaryMessageEncoder;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringSerializer;

public final class MeasurementProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];
        Schema schema = new Schema.Parser().parse(new File(args[2]));
        int count = Integer.parseInt(args[3]);
        int devices = args.length > 4 ? Integer.parseInt(args[4]) : 10;
        long firstSeq = args.length > 5 ? Long.parseLong(args[5]) : 0;

        Properties config = new Properties();
        config.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(ProducerConfig.ACKS_CONFIG, "all");
        config.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        config.put(ProducerConfig.LINGER_MS_CONFIG, 20);
        config.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class);
        config.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class);

        BinaryMessageEncoder<GenericRecord> encoder =
            new BinaryMessageEncoder<>(GenericData.get(), schema);
        AtomicLong acknowledged = new AtomicLong();
        AtomicReference<Exception> failed = new AtomicReference<>();
        long now = System.currentTimeMillis();
        try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(config)) {
            for (int i = 0; i < count; i++) {
                String device = String.format("java-%03d", i % devices);
                Map<String, Double> readings = new HashMap<>();
                readings.put("pressure_bar", 2.0 + (i % devices) / 10.0);
                readings.put("temperature_c", 21.5);
                GenericRecord record = new GenericData.Record(schema);
                record.put("device_id", device);
                record.put("event_time", now + i);
                record.put("seq", firstSeq + i / devices);
                record.put("readings", readings);
                record.put("firmware", "java-1.0");
                if (schema.getField("site") != null) {
                    record.put("site", "plant-j");
                }
                ByteBuffer encoded = encoder.encode(record);
                byte[] value = new byte[encoded.remaining()];
                encoded.get(value);
                producer.send(new ProducerRecord<>(topic, device, value), (metadata, error) -> {
                    if (error != null) {
                        failed.compareAndSet(null, error);
                    } else {
                        acknowledged.incrementAndGet();
                    }
                });
            }
            producer.flush();
        }
        if (failed.get() != null) {
            throw failed.get();
        }
        System.out.println(acknowledged.get() + " measurements acknowledged");
    }
}
