# The deterministic consensus simulator (tests/sim/): validators running the
# real engine over a simulated network with faults from each seed.
#
#   make check-sim            SIM_SEEDS seeds (default 60, about half a minute),
#                             SIM_LIVENESS_SEEDS of the liveness scenario
#                             (default 20, about 15 s), a failing run with
#                             more byzantine stake than consensus tolerates
#                             caught, and seeds replayed byte for byte
#   make sim SEEDS=10000      a longer run of both scenarios
#   build/out/tests/sim --seed N -v      one seed, traced

SIM := $(BUILD)/tests/sim
SIM_SRCS := $(wildcard tests/sim/*.c)
SIM_SEEDS ?= 60
SIM_LIVENESS_SEEDS ?= 20
SEEDS ?= 1000

$(SIM): $(call obj,$(SIM_SRCS)) $(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: check-sim sim
check-sim: $(SIM)
	@tests/sim/check.sh $(SIM) $(SIM_SEEDS) $(SIM_LIVENESS_SEEDS)

sim: $(SIM)
	$(SIM) --seeds $(SEEDS)
	$(SIM) --liveness --seeds $(SEEDS)

CHECK_TARGETS += check-sim
