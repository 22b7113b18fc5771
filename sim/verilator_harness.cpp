// Stand-alone Verilator testbench for the rsaccel accelerator top level (class Vtop).
//
// It does what rsaccel.sim.cocotb_tb.accel_tb does, without Python in the clock loop:
// reset, set the timeout, start the accelerator and clear its counters over AXI4-Lite,
// stream the job's words into s_axis (one frame, tlast on the last word), collect m_axis
// until the expected number of frames (tlast) arrived, polling the status register every
// 256 cycles to stop on an error, then read every read-only register.
//
// Usage: harness JOB_DIR
//   JOB_DIR/params.txt   "key value" lines: stall seed timeout max_cycles expect_frames
//   JOB_DIR/registers.txt "name offset width" lines, the read-only registers to read at the end
//                         (and "control", "timeout", "clear_counters", "status" must be listed
//                         in JOB_DIR/writable.txt as "name offset")
//   JOB_DIR/words.bin    the input words, 64-bit little-endian
// Writes JOB_DIR/result.txt: "frames N", "cycles N", "stopped TEXT" (if it stopped early),
// "irq V", "reg NAME VALUE" lines, then "words" and one hexadecimal output word per line.
//
// Stalls: with probability `stall` the source stays idle for a cycle before offering its next
// word (a word once offered is held until taken, as AXI4-Stream requires), and the sink drops
// tready for a cycle. The random numbers come from splitmix64 seeded with `seed`, so a run is
// reproducible on any machine.

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "Vtop.h"
#include "verilated.h"

namespace {

struct Rng {
    uint64_t state;
    explicit Rng(uint64_t seed) : state(seed) {}
    uint64_t next() {
        uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // true with probability p
    bool chance(double p) { return p > 0 && (next() >> 11) * 0x1.0p-53 < p; }
};

struct Bench {
    std::unique_ptr<VerilatedContext> context;
    std::unique_ptr<Vtop> top;
    Rng rng;
    double stall;
    std::vector<uint64_t> in_words;
    size_t in_next = 0;
    bool in_offered = false;
    bool streaming = false;
    std::vector<uint64_t> out_words;
    uint64_t frames = 0;
    uint64_t cycles = 0;

    Bench(double stall, uint64_t seed)
        : context(new VerilatedContext), rng(seed), stall(stall) {
        top.reset(new Vtop{context.get()});
        top->clk = 0;
        top->rst = 1;
        top->s_axis_tvalid = 0;
        top->s_axis_tlast = 0;
        top->s_axis_tdata = 0;
        top->m_axis_tready = 0;
        top->s_axil_awvalid = 0;
        top->s_axil_wvalid = 0;
        top->s_axil_bready = 0;
        top->s_axil_arvalid = 0;
        top->s_axil_rready = 0;
        top->s_axil_awprot = 0;
        top->s_axil_arprot = 0;
        top->s_axil_wstrb = 0xF;
        top->eval();
    }

    // One clock cycle. The caller has set the AXI4-Lite inputs; the streams are driven here.
    // Handshakes are sampled after the inputs settle and before the rising edge.
    void step() {
        if (streaming) {
            if (!in_offered && in_next < in_words.size() && !rng.chance(stall)) {
                in_offered = true;
            }
            top->s_axis_tvalid = in_offered;
            top->s_axis_tdata = in_offered ? in_words[in_next] : 0;
            top->s_axis_tlast = in_offered && in_next + 1 == in_words.size();
            top->m_axis_tready = !rng.chance(stall);
        }
        top->eval();
        bool in_fire = top->s_axis_tvalid && top->s_axis_tready;
        if (top->m_axis_tvalid && top->m_axis_tready) {
            out_words.push_back(top->m_axis_tdata);
            if (top->m_axis_tlast) frames++;
        }
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        cycles++;
        if (in_fire) {
            in_offered = false;
            in_next++;
        }
    }

    void axil_write(uint32_t addr, uint32_t data) {
        top->s_axil_awaddr = addr;
        top->s_axil_awvalid = 1;
        top->s_axil_wdata = data;
        top->s_axil_wvalid = 1;
        top->s_axil_bready = 1;
        bool aw_done = false, w_done = false, b_done = false;
        while (!b_done) {
            top->eval();
            bool aw_fire = top->s_axil_awvalid && top->s_axil_awready;
            bool w_fire = top->s_axil_wvalid && top->s_axil_wready;
            bool b_fire = top->s_axil_bvalid && top->s_axil_bready;
            step();
            if (aw_fire) { aw_done = true; top->s_axil_awvalid = 0; }
            if (w_fire) { w_done = true; top->s_axil_wvalid = 0; }
            if (b_fire && aw_done && w_done) b_done = true;
        }
        top->s_axil_bready = 0;
    }

    uint32_t axil_read(uint32_t addr) {
        top->s_axil_araddr = addr;
        top->s_axil_arvalid = 1;
        top->s_axil_rready = 1;
        for (;;) {
            top->eval();
            bool ar_fire = top->s_axil_arvalid && top->s_axil_arready;
            bool r_fire = top->s_axil_rvalid && top->s_axil_rready;
            uint32_t data = top->s_axil_rdata;
            step();
            if (ar_fire) top->s_axil_arvalid = 0;
            if (r_fire) {
                top->s_axil_rready = 0;
                return data;
            }
        }
    }
};

std::map<std::string, std::string> read_pairs(const std::string& path) {
    std::map<std::string, std::string> pairs;
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "harness: cannot read %s\n", path.c_str());
        std::exit(2);
    }
    std::string key, value;
    while (in >> key >> value) pairs[key] = value;
    return pairs;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s JOB_DIR\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    auto params = read_pairs(dir + "/params.txt");
    auto writable = read_pairs(dir + "/writable.txt");
    const double stall = std::stod(params.at("stall"));
    const uint64_t seed = std::stoull(params.at("seed"));
    const uint64_t timeout = std::stoull(params.at("timeout"));
    const uint64_t max_cycles = std::stoull(params.at("max_cycles"));
    const uint64_t expect_frames = std::stoull(params.at("expect_frames"));

    Bench bench(stall, seed);
    {
        std::ifstream words(dir + "/words.bin", std::ios::binary);
        if (!words) {
            std::fprintf(stderr, "harness: cannot read %s/words.bin\n", dir.c_str());
            return 2;
        }
        uint8_t bytes[8];
        while (words.read(reinterpret_cast<char*>(bytes), 8)) {
            uint64_t word = 0;
            for (int k = 7; k >= 0; k--) word = (word << 8) | bytes[k];
            bench.in_words.push_back(word);
        }
    }

    for (int k = 0; k < 5; k++) bench.step();
    bench.top->rst = 0;
    for (int k = 0; k < 2; k++) bench.step();
    const uint32_t status_offset = std::stoul(writable.at("status"));
    bench.axil_write(std::stoul(writable.at("timeout")), static_cast<uint32_t>(timeout));
    bench.axil_write(std::stoul(writable.at("control")), 1);
    bench.axil_write(std::stoul(writable.at("clear_counters")), 1);

    bench.streaming = true;
    std::string stopped;
    uint64_t waited = 0;
    const uint64_t poll = 256;
    while (bench.frames < expect_frames) {
        if (waited >= max_cycles) {
            stopped = "no result after " + std::to_string(waited) + " cycles";
            break;
        }
        for (uint64_t k = 0; k < poll && bench.frames < expect_frames; k++) bench.step();
        waited += poll;
        if (bench.frames >= expect_frames) break;
        // an error stops the accelerator (it then discards input): stop waiting
        if ((bench.axil_read(status_offset) >> 4) & 0xF) {
            stopped = "error";
            break;
        }
    }
    for (int k = 0; k < 4; k++) bench.step();
    const int irq = bench.top->irq;

    std::ofstream out(dir + "/result.txt");
    out << "frames " << bench.frames << "\n";
    out << "cycles " << bench.cycles << "\n";
    if (!stopped.empty()) out << "stopped " << stopped << "\n";
    out << "irq " << irq << "\n";
    std::ifstream regs(dir + "/registers.txt");
    std::string name;
    uint32_t offset, width;
    while (regs >> name >> offset >> width) {
        uint64_t value = bench.axil_read(offset);
        if (width > 32) value |= static_cast<uint64_t>(bench.axil_read(offset + 4)) << 32;
        out << "reg " << name << " " << value << "\n";
    }
    out << "words\n";
    char hex[20];
    for (uint64_t word : bench.out_words) {
        std::snprintf(hex, sizeof hex, "%016llx\n", static_cast<unsigned long long>(word));
        out << hex;
    }
    out.close();
    bench.top->final();
    return out ? 0 : 1;
}
