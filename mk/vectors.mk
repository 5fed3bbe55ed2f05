# Test vectors of docs/FORMATS.md. `make vectors` prints them in the form the
# document holds them; tests/unit/test_vectors.c checks the document against
# the code, so a format change shows up as a failing unit test until the
# vectors section is regenerated and reviewed.
.PHONY: vectors

$(BUILD)/tests/vectors-gen: $(call obj,tests/vectors/gen.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

vectors: $(BUILD)/tests/vectors-gen
	@$(BUILD)/tests/vectors-gen
