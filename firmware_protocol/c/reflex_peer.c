/* A reflex peer: the smallest pen firmware that speaks the protocol, built on the generated C
 * codec (smp protocol c-codec). It answers every command at once, as an MCU would, over a
 * pseudo-terminal, so the host's own costs can be measured against it (bench/latency.py), and
 * it is an example of the codec in use for firmware authors (docs/protocol.md).
 *
 * What it does: prints the pty's path on stdout, then serves it. The state table, the extra
 * checks in their order, the duplicate window, SEQ 0, the lease (lapse while RUNNING latches
 * LEASE_EXPIRED, while ARMED returns to IDLE; judged before every command: lease_tick) and the
 * E-stop (also its place in a read: run_read) follow the spec, through the generated smp_rule_*
 * functions. What it leaves out:
 * physics (measured depth and speed equal their commands at once; the actuator is driven to
 * the setpoints' depth in ARMED and RUNNING only, else 0), fault detection other than
 * the lease, a boot phase (it is IDLE from the start), the footswitch (it has none:
 * SET_FOOTSWITCH REQUIRED is NACKed UNSUPPORTED, OFF and OPTIONAL are ACKed and change
 * nothing). It sends TELEMETRY at the set rate once the host has sent its first byte. It
 * reports Capability SIMULATED: records made with it are marked so.
 *
 * Its transmit queue (docs/protocol.md section 12): a frame goes to the pty at once; what the
 * pty does not take (the host stopped reading) waits in a ring, whole and in order, and goes
 * out when select() says the pty takes bytes again. A TELEMETRY frame that falls due while the
 * ring holds bytes is skipped (counted in telemetry_seq); replies and EVENTs are never skipped.
 *
 * Build: smp protocol c-codec --out DIR
 *        cc -std=c99 -O2 -I DIR DIR/smp_protocol.c firmware_protocol/c/reflex_peer.c -o peer
 */
#define _XOPEN_SOURCE 600

#include "smp_protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Hard limits, reported in IDENTIFY and enforced (the simulator's defaults). */
#define DEPTH_MIN_UM 0
#define DEPTH_MAX_UM 2500
#define SPEED_MIN_CENTIHZ 3000u
#define SPEED_MAX_CENTIHZ 18000u
#define DUTY_MIN_PERMILLE 50u
#define DUTY_MAX_PERMILLE 1000u
#define PERIOD_MIN_US 20000u
#define PERIOD_MAX_US 1000000u
#define LEASE_MAX_MS 2000u
#define TELEMETRY_MAX_HZ 1000u

#define READ_SIZE 512u
/* The transmit ring: far more than the replies a host that reads them can have unread
 * (section 4: one command outstanding, plus renewals and E-stops). */
#define TX_SIZE 16384u
/* Frames one read can complete: they never overlap, each is at least SMP_OVERHEAD bytes, and
 * the parser held less than SMP_MAX_FRAME bytes before the read. */
#define READ_FRAMES_MAX ((READ_SIZE + SMP_MAX_FRAME) / SMP_OVERHEAD + 1u)

typedef struct {
    uint8_t seq, type, len;
    uint8_t payload[SMP_MAX_PAYLOAD];
    uint8_t reply[SMP_MAX_FRAME];
    size_t reply_len;
} window_entry_t;

static struct {
    int fd;
    uint8_t state;
    uint16_t faults;
    int has_setpoints, lease_live, host_seen;
    smp_set_setpoints_t setpoints;
    int16_t depth_cmd_um;
    uint64_t lease_until_ms, boot_ms, next_telemetry_us;
    uint16_t telemetry_hz;
    uint32_t telemetry_seq;
    smp_calibration_table_t calibration;
    window_entry_t window[SMP_DEDUP_WINDOW];
    size_t window_len, window_next;
    uint8_t pending_event; /* EVENT to send after the reply, 0 for none */
    smp_frame_t read_frames[READ_FRAMES_MAX]; /* the frames of the current read, in order */
    size_t read_len;
} pen;

static struct {
    uint8_t buf[TX_SIZE];
    size_t head, len; /* the oldest byte not yet written, and how many wait */
    int overflowed;
} tx;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t now_ms(void) { return now_us() / 1000u; }

/* Write what the ring holds, oldest first, until the pty takes no more (EAGAIN: the host is
 * not reading; main's select() says when it does again). */
static void tx_flush(void)
{
    while (tx.len > 0) {
        size_t run = TX_SIZE - tx.head < tx.len ? TX_SIZE - tx.head : tx.len; /* to the wrap */
        ssize_t w = write(pen.fd, tx.buf + tx.head, run);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        tx.head = (tx.head + (size_t)w) % TX_SIZE;
        tx.len -= (size_t)w;
    }
}

/* Queue one whole frame behind what waits, then write what the pty takes: with an empty ring
 * (the common case) the frame goes out at once, in one write. */
static void send_bytes(const uint8_t *data, size_t n)
{
    size_t i;
    if (tx.len == 0) tx.head = 0; /* an empty ring starts at 0: a frame never wraps there */
    if (n > TX_SIZE - tx.len) { /* only a host that never reads its replies gets here */
        if (!tx.overflowed) fprintf(stderr, "reflex_peer: transmit queue full (the host "
                                    "reads nothing): whole frames are dropped\n");
        tx.overflowed = 1;
        return; /* the whole frame, never a part of it */
    }
    for (i = 0; i < n; i++) tx.buf[(tx.head + tx.len + i) % TX_SIZE] = data[i];
    tx.len += n;
    tx_flush();
}

static void send_frame(const smp_frame_t *f)
{
    uint8_t out[SMP_MAX_FRAME];
    send_bytes(out, smp_encode(f, out, sizeof out));
}

static void send_event(uint8_t code)
{
    smp_frame_t f;
    memset(&f, 0, sizeof f);
    f.type = SMP_MSG_EVENT;
    f.msg.event.event = code;
    f.msg.event.state = pen.state;
    f.msg.event.faults = pen.faults;
    f.msg.event.uptime_ms = (uint32_t)(now_ms() - pen.boot_ms);
    send_frame(&f);
}

static void stop_and_retract(void)
{
    pen.depth_cmd_um = 0;
    pen.has_setpoints = 0;
}

static uint16_t remaining_lease_ms(void)
{
    uint64_t now = now_ms();
    if (!pen.lease_live || now >= pen.lease_until_ms) return 0;
    return (uint16_t)(pen.lease_until_ms - now);
}

/* The lease's lapse (docs/protocol.md section 8). Time is judged before anything acts on it:
 * called after every wait (select) and before every command (handle_frame), so a command read
 * late, after the lease ran out (a busy or descheduled loop), meets the pen as the lapse left
 * it: a NEEDLE_START is NACKed BAD_STATE in IDLE, never ACKed on a lease already gone. */
static void lease_tick(void)
{
    if (!pen.lease_live || now_ms() < pen.lease_until_ms) return;
    pen.lease_live = 0;
    if (pen.state == SMP_STATE_RUNNING) {
        pen.faults |= SMP_FAULT_LEASE_EXPIRED;
        stop_and_retract();
        pen.state = SMP_STATE_FAULT;
        send_event(SMP_EVENT_FAULT_LATCHED);
    } else if (pen.state == SMP_STATE_ARMED) {
        pen.state = SMP_STATE_IDLE;
        send_event(SMP_EVENT_STATE_CHANGED);
    }
}

static void send_telemetry(void)
{
    smp_frame_t f;
    smp_telemetry_t *t = &f.msg.telemetry;
    int running = pen.state == SMP_STATE_RUNNING;
    memset(&f, 0, sizeof f);
    f.type = SMP_MSG_TELEMETRY;
    t->telemetry_seq = pen.telemetry_seq++;
    t->uptime_ms = (uint32_t)(now_ms() - pen.boot_ms);
    t->state = pen.state;
    t->faults = pen.faults;
    t->flags = (uint8_t)(SMP_TFLAG_CARTRIDGE_PRESENT | (running ? SMP_TFLAG_NEEDLE_RUNNING : 0)
                         | (pen.lease_live ? SMP_TFLAG_LEASE_ACTIVE : 0));
    /* the needle is out only in ARMED and RUNNING (docs/protocol.md section 7): the actuator
     * drives to the setpoints' depth there and to 0 in every other state; no physics, so the
     * measured depth is where it is driven */
    t->depth_cmd_um = (pen.state == SMP_STATE_ARMED || running) ? pen.depth_cmd_um : 0;
    t->depth_um = t->depth_cmd_um;
    t->speed_centihz = running ? pen.setpoints.speed_centihz : 0u;
    t->current_ma = running ? 300u : 0u;
    t->temp_centideg_c = 3000;
    t->lease_remaining_ms = remaining_lease_ms();
    send_frame(&f);
}

/* OUT_OF_LIMITS: the first bad field in wire order, SMP_LIMIT_NONE if all are good. */
/* A little-endian i16 of the wire, without a shift of a signed int (16-bit int MCUs). */
static long le_i16(const uint8_t *p)
{
    long v = (long)p[0] | ((long)p[1] << 8);
    return v >= 0x8000L ? v - 0x10000L : v;
}

static uint8_t limit_violation(const smp_frame_t *f)
{
    const smp_set_setpoints_t *s = &f->msg.set_setpoints;
    const smp_calibration_write_t *c = &f->msg.calibration_write;
    size_t i;
    switch (f->type) {
    case SMP_MSG_SET_SETPOINTS:
        if (s->depth_um < DEPTH_MIN_UM || s->depth_um > DEPTH_MAX_UM) return SMP_LIMIT_DEPTH;
        if (s->speed_centihz < SPEED_MIN_CENTIHZ || s->speed_centihz > SPEED_MAX_CENTIHZ)
            return SMP_LIMIT_SPEED;
        if (s->duty_permille < DUTY_MIN_PERMILLE || s->duty_permille > DUTY_MAX_PERMILLE)
            return SMP_LIMIT_DUTY;
        if (s->period_us < PERIOD_MIN_US || s->period_us > PERIOD_MAX_US) return SMP_LIMIT_PERIOD;
        return SMP_LIMIT_NONE;
    case SMP_MSG_LEASE_RENEW:
        return (f->msg.lease_renew.lease_ms < 1u || f->msg.lease_renew.lease_ms > LEASE_MAX_MS)
            ? SMP_LIMIT_LEASE : SMP_LIMIT_NONE;
    case SMP_MSG_SET_TELEMETRY_RATE:
        return f->msg.set_telemetry_rate.rate_hz > TELEMETRY_MAX_HZ
            ? SMP_LIMIT_TELEMETRY_RATE : SMP_LIMIT_NONE;
    case SMP_MSG_CALIBRATION_WRITE:
        if (c->count > SMP_CALIBRATION_POINTS) return SMP_LIMIT_CALIBRATION;
        for (i = 4u * c->count; i < sizeof c->raw_points; i++) {
            if (c->raw_points[i]) return SMP_LIMIT_CALIBRATION; /* unused points are zero */
        }
        for (i = 0; i < c->count; i++) {
            const uint8_t *p = c->raw_points + 4u * i;
            long cmd = le_i16(p);
            long truth = le_i16(p + 2);
            long prev = i ? le_i16(p - 4) : cmd - 1;
            if (cmd <= prev || cmd < DEPTH_MIN_UM || cmd > DEPTH_MAX_UM || truth < 0
                || truth > DEPTH_MAX_UM) return SMP_LIMIT_CALIBRATION;
        }
        return SMP_LIMIT_NONE;
    case SMP_MSG_SET_FOOTSWITCH:
        return f->msg.set_footswitch.mode > SMP_FOOTSWITCH_REQUIRED
            ? SMP_LIMIT_FOOTSWITCH_MODE : SMP_LIMIT_NONE;
    default:
        return SMP_LIMIT_NONE;
    }
}

static void reply_nack(smp_frame_t *r, uint8_t type, uint8_t reason, uint8_t detail)
{
    r->type = SMP_MSG_NACK;
    r->msg.nack.acked_type = type;
    r->msg.nack.reason = reason;
    r->msg.nack.detail = detail;
}

static void execute(const smp_frame_t *f, smp_frame_t *r)
{
    uint8_t st = pen.state;
    size_t n = 0, i;
    const uint8_t *checks;
    int next;
    if (!(smp_rule_accepted_states(f->type) & (1u << st))) {
        reply_nack(r, f->type, smp_rule_refusal(st), SMP_LIMIT_NONE);
        return;
    }
    checks = smp_rule_extra_checks(f->type, &n);
    for (i = 0; i < n; i++) {
        uint8_t detail = SMP_LIMIT_NONE;
        int failed;
        switch (checks[i]) {
        case SMP_NACK_OUT_OF_LIMITS: detail = limit_violation(f); failed = detail != 0; break;
        case SMP_NACK_NO_SETPOINTS: failed = !pen.has_setpoints; break;
        case SMP_NACK_NO_CARTRIDGE: failed = 0; break; /* always fitted */
        case SMP_NACK_NO_LEASE: failed = !pen.lease_live; break;
        case SMP_NACK_CONDITION_ACTIVE: failed = 0; break; /* no fault has a lasting cause */
        case SMP_NACK_FOOTSWITCH_UP: failed = 0; break; /* no footswitch: mode is never REQUIRED */
        case SMP_NACK_UNSUPPORTED: /* a calibration table is fitted, a footswitch is not */
            failed = f->type == SMP_MSG_SET_FOOTSWITCH
                && f->msg.set_footswitch.mode == SMP_FOOTSWITCH_REQUIRED;
            break;
        default: failed = 1; break; /* a check this peer does not know: refuse */
        }
        if (failed) {
            reply_nack(r, f->type, checks[i], detail);
            return;
        }
    }
    r->type = SMP_MSG_ACK;
    r->msg.ack.acked_type = f->type;
    switch (f->type) {
    case SMP_MSG_IDENTIFY_REQUEST: {
        smp_identify_t *id = &r->msg.identify;
        r->type = SMP_MSG_IDENTIFY;
        id->protocol_version = SMP_PROTOCOL_VERSION;
        id->schema_hash = SMP_SCHEMA_HASH;
        id->fw_major = 0;
        id->fw_minor = 1;
        memcpy(id->serial, "REFLEX-0001", 11);
        id->capabilities = SMP_CAP_CALIBRATION_TABLE | SMP_CAP_TELEMETRY_1KHZ | SMP_CAP_SIMULATED;
        id->depth_min_um = DEPTH_MIN_UM;
        id->depth_max_um = DEPTH_MAX_UM;
        id->speed_min_centihz = SPEED_MIN_CENTIHZ;
        id->speed_max_centihz = SPEED_MAX_CENTIHZ;
        id->duty_min_permille = DUTY_MIN_PERMILLE;
        id->duty_max_permille = DUTY_MAX_PERMILLE;
        id->period_min_us = PERIOD_MIN_US;
        id->period_max_us = PERIOD_MAX_US;
        id->current_max_ma = 1500u;
        id->temp_max_centideg_c = 5500;
        id->lease_max_ms = LEASE_MAX_MS;
        id->telemetry_max_hz = TELEMETRY_MAX_HZ;
        break;
    }
    case SMP_MSG_PING:
        r->type = SMP_MSG_PONG;
        r->msg.pong.token = f->msg.ping.token;
        break;
    case SMP_MSG_SET_SETPOINTS:
        pen.setpoints = f->msg.set_setpoints;
        pen.depth_cmd_um = f->msg.set_setpoints.depth_um;
        pen.has_setpoints = 1;
        break;
    case SMP_MSG_RETRACT:
        stop_and_retract();
        break;
    case SMP_MSG_ESTOP:
        stop_and_retract();
        if (st != SMP_STATE_ESTOP) pen.pending_event = SMP_EVENT_ESTOP_LATCHED;
        break;
    case SMP_MSG_LEASE_RENEW:
        pen.lease_until_ms = now_ms() + f->msg.lease_renew.lease_ms;
        pen.lease_live = 1;
        break;
    case SMP_MSG_CLEAR_FAULTS:
        pen.faults = 0;
        if (st == SMP_STATE_FAULT || st == SMP_STATE_ESTOP) pen.pending_event = SMP_EVENT_CLEARED;
        break;
    case SMP_MSG_SET_TELEMETRY_RATE:
        pen.telemetry_hz = f->msg.set_telemetry_rate.rate_hz;
        pen.next_telemetry_us = now_us();
        break;
    case SMP_MSG_CALIBRATION_READ:
        r->type = SMP_MSG_CALIBRATION_TABLE;
        r->msg.calibration_table = pen.calibration;
        break;
    case SMP_MSG_CALIBRATION_WRITE:
        pen.calibration.count = f->msg.calibration_write.count;
        pen.calibration.written_at_s = f->msg.calibration_write.written_at_s;
        memcpy(pen.calibration.raw_points, f->msg.calibration_write.raw_points,
               sizeof pen.calibration.raw_points);
        break;
    default: /* ARM, DISARM, NEEDLE_START, NEEDLE_STOP, SET_FOOTSWITCH (OFF, OPTIONAL): the
              * state change is all */
        break;
    }
    next = smp_rule_transition(f->type, st);
    if (next >= 0) pen.state = (uint8_t)next;
}

/* One valid frame from the host. `superseded`: a CLEAR_FAULTS with an ESTOP after it in the
 * same read: answered NACK ESTOP_LATCHED instead of being executed (docs/protocol.md s9). */
static void handle_frame(const smp_frame_t *f, int superseded)
{
    uint8_t payload[SMP_MAX_PAYLOAD];
    int size = smp_pack_payload(f, payload);
    int dedup = smp_rule_deduplicated(f->type);
    smp_frame_t reply;
    window_entry_t *e;
    size_t i;
    if (smp_rule_accepted_states(f->type) == 0) return; /* a pen->host type: not a command */
    lease_tick(); /* judge time first: the lease may have run out since the last tick */
    if (f->seq == 0 && !smp_rule_acts_with_seq_0(f->type)) return;
    if (smp_rule_clears_window(f->type)) { /* a new connection: forget every old entry */
        pen.window_len = 0;
        pen.window_next = 0; /* the lookup scans window[0 .. len-1]: new entries start at 0 */
    }
    if (dedup) {
        for (i = 0; i < pen.window_len; i++) {
            e = &pen.window[i];
            if (e->seq == f->seq && e->type == f->type && e->len == (uint8_t)size
                && memcmp(e->payload, payload, (size_t)size) == 0) {
                send_bytes(e->reply, e->reply_len); /* a retransmission: same reply again */
                return;
            }
        }
    }
    memset(&reply, 0, sizeof reply);
    reply.seq = f->seq;
    pen.pending_event = 0;
    if (superseded) reply_nack(&reply, f->type, SMP_NACK_ESTOP_LATCHED, SMP_LIMIT_NONE);
    else execute(f, &reply);
    if (dedup) {
        e = &pen.window[pen.window_next];
        pen.window_next = (pen.window_next + 1u) % SMP_DEDUP_WINDOW;
        if (pen.window_len < SMP_DEDUP_WINDOW) pen.window_len++;
        e->seq = f->seq;
        e->type = f->type;
        e->len = (uint8_t)size;
        memcpy(e->payload, payload, (size_t)size);
        e->reply_len = smp_encode(&reply, e->reply, sizeof e->reply);
        send_bytes(e->reply, e->reply_len);
    } else {
        send_frame(&reply);
    }
    if (pen.pending_event) send_event(pen.pending_event); /* ACK first, then EVENT */
}

/* The frames of one read (docs/protocol.md section 9): its ESTOPs act first, in wire order;
 * then the others, in wire order, except that a command before the last ESTOP for which
 * smp_rule_superseded_by_estop() says so (CLEAR_FAULTS: it must not clear an E-stop sent after
 * it) is NACKed ESTOP_LATCHED and not executed. */
static void run_read(void)
{
    size_t i, last_estop = 0;
    int estop = 0;
    for (i = 0; i < pen.read_len; i++) {
        if (pen.read_frames[i].type == SMP_MSG_ESTOP) {
            handle_frame(&pen.read_frames[i], 0);
            last_estop = i;
            estop = 1;
        }
    }
    for (i = 0; i < pen.read_len; i++) {
        const smp_frame_t *f = &pen.read_frames[i];
        if (f->type != SMP_MSG_ESTOP)
            handle_frame(f, estop && i < last_estop && smp_rule_superseded_by_estop(f->type));
    }
    pen.read_len = 0;
}

/* The parser's handler: keep the frame until the read is complete (run_read). */
static void on_frame(void *ctx, const smp_frame_t *f)
{
    (void)ctx;
    if (pen.read_len == READ_FRAMES_MAX) run_read(); /* cannot happen (READ_FRAMES_MAX) */
    pen.read_frames[pen.read_len++] = *f;
}

static int open_pty(void)
{
    struct termios tio;
    int master = posix_openpt(O_RDWR | O_NOCTTY), slave;
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return -1;
    /* Hold the slave open too, so the master reads no EIO between host connections. */
    slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    if (slave < 0 || tcgetattr(slave, &tio) != 0) return -1;
    tio.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    tio.c_oflag &= ~(tcflag_t)OPOST;
    tio.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    tio.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    tio.c_cflag |= CS8;
    if (tcsetattr(slave, TCSANOW, &tio) != 0) return -1;
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    printf("%s\n", ptsname(master));
    fflush(stdout);
    return master;
}

int main(void)
{
    smp_parser_t parser;
    uint8_t buf[READ_SIZE];
    uint64_t last_rx_ms = 0;
    pen.fd = open_pty();
    if (pen.fd < 0) {
        perror("reflex_peer: cannot open a pseudo-terminal");
        return 1;
    }
    pen.state = SMP_STATE_IDLE;
    pen.telemetry_hz = SMP_TELEMETRY_DEFAULT_HZ;
    pen.boot_ms = now_ms();
    smp_parser_init(&parser, on_frame, NULL);
    for (;;) {
        fd_set rd, wr;
        struct timeval tv = {0, 1000}; /* 1 ms tick, as the simulated firmware's */
        ssize_t n;
        FD_ZERO(&rd);
        FD_ZERO(&wr);
        FD_SET(pen.fd, &rd);
        if (tx.len > 0) FD_SET(pen.fd, &wr); /* bytes wait: wake when the pty takes them */
        if (select(pen.fd + 1, &rd, &wr, NULL, &tv) < 0) {
            if (errno != EINTR) return 1;
            FD_ZERO(&rd); /* the sets are undefined after an error */
            FD_ZERO(&wr);
        }
        lease_tick(); /* the wait may have run long: judge time before acting on anything */
        if (FD_ISSET(pen.fd, &wr)) tx_flush();
        if (FD_ISSET(pen.fd, &rd)) {
            n = read(pen.fd, buf, sizeof buf);
            if (n > 0) {
                if (!pen.host_seen) pen.next_telemetry_us = now_us(); /* the schedule starts */
                pen.host_seen = 1;
                last_rx_ms = now_ms();
                smp_parser_feed(&parser, buf, (size_t)n);
                run_read();
            } else if (n < 0 && errno != EAGAIN && errno != EINTR && errno != EIO) {
                return 1;
            }
        }
        if (smp_parser_buffered(&parser) && now_ms() - last_rx_ms >= SMP_INTER_BYTE_TIMEOUT_MS) {
            smp_parser_expire(&parser); /* the line went quiet mid-frame */
            run_read();
        }
        lease_tick();
        if (pen.host_seen && pen.telemetry_hz > 0) {
            uint64_t now = now_us(), period_us = 1000000u / pen.telemetry_hz, missed;
            if (now >= pen.next_telemetry_us) {
                /* Frames that fell due while the loop ran late: skipped and counted (sections
                 * 2 and 12), so the host sees the gap; one frame, the latest, goes out now. */
                missed = (now - pen.next_telemetry_us) / period_us;
                pen.telemetry_seq += (uint32_t)missed;
                if (tx.len == 0) send_telemetry();
                else pen.telemetry_seq++; /* skipped: it would wait behind bytes (section 12) */
                pen.next_telemetry_us += (missed + 1u) * period_us; /* in phase, after now */
            }
        }
    }
}
