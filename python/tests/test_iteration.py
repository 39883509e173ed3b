"""DataLoader's iteration contract: every iter() is a complete pass of the current epoch, except
the first after load_state_dict; set_epoch selects the next pass's epoch; passes are independent;
breaking out never skips or repeats samples. And what code written for DataLoader touches:
dataset, sampler, pickling, seed=None, dtype/normalize."""

import copy
import pickle

import numpy as np
import pytest
import torch
import torchvision.transforms.v2 as T

import augloader


def indices(batches):
    return torch.cat([b[2] for b in batches]).tolist()


def loader(dataset, **kw):
    kw.setdefault("batch_size", 8)
    kw.setdefault("workers", 2)
    return augloader.Loader(dataset, seed=7, return_indices=True, size=32, **kw)


def one_pass(L):
    return indices(list(L))


def test_breaking_out_and_looping_again_is_a_full_pass_of_the_same_epoch(dataset):
    L = loader(dataset)
    full = one_pass(loader(dataset))
    for k, batch in enumerate(L):
        if k == 4:
            break
    assert one_pass(L) == full  # all 72, epoch 0 again
    assert L.epoch == 1  # a completed pass moves on
    assert one_pass(L) != full and sorted(one_pass(loader(dataset, shuffle=True))) == list(range(72))


def test_peek_then_set_epoch_then_loop_is_the_whole_epoch(dataset):
    L = loader(dataset)
    next(iter(L))
    L.set_epoch(0)
    got = one_pass(L)
    assert sorted(got) == list(range(72)) and got == one_pass(loader(dataset))


def test_set_epoch_selects_the_next_pass_and_restarts_it(dataset):
    ref = loader(dataset)
    ref.set_epoch(3)
    e3 = one_pass(ref)
    L = loader(dataset)
    L.set_epoch(3)
    it = iter(L)
    next(it)
    next(it)
    L.set_epoch(3)
    assert one_pass(L) == e3
    assert L.epoch == 4


def test_two_live_iterators_are_independent_passes(dataset):
    L = loader(dataset)
    pairs = list(zip(L, L))
    assert len(pairs) == len(L) == 9
    for a, b in pairs:
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    # An early, unfinished iterator is not ended by a later one.
    first = iter(L)
    next(first)
    second = list(L)
    rest = list(first)
    assert len(second) == 9 and len(rest) == 8


def test_resume_after_load_state_dict_continues_once_then_full_passes(dataset):
    L = loader(dataset)
    L.set_epoch(2)
    ref = loader(dataset)
    ref.set_epoch(2)
    full = one_pass(ref)
    it = iter(L)
    head = indices([next(it) for _ in range(3)])
    state = L.state_dict()
    R = loader(dataset, workers=1)
    R.load_state_dict(state)
    tail = one_pass(R)
    assert head + tail == full
    assert R.epoch == 3
    ref.set_epoch(3)
    assert one_pass(R) == one_pass(ref)  # the next pass is whole


def test_set_epoch_to_the_saved_epoch_keeps_the_resume_and_another_drops_it(dataset):
    L = loader(dataset)
    it = iter(L)
    head = indices([next(it) for _ in range(2)])
    state = L.state_dict()
    R = loader(dataset)
    R.load_state_dict(state)
    R.set_epoch(0)  # the usual `for epoch in range(start, n): set_epoch(epoch)` loop
    assert head + one_pass(R) == one_pass(loader(dataset))
    R.load_state_dict(state)
    R.set_epoch(1)
    ref = loader(dataset)
    ref.set_epoch(1)
    assert one_pass(R) == one_pass(ref)


def test_state_after_a_finished_pass_points_at_the_next_epoch(dataset):
    L = loader(dataset)
    one_pass(L)
    s = L.state_dict()
    assert (s["epoch"], s["position"]) == (1, 0)
    R = loader(dataset)
    R.load_state_dict(s)
    ref = loader(dataset)
    ref.set_epoch(1)
    assert one_pass(R) == one_pass(ref)


def test_uneven_ranks_deliver_every_sample_once(dataset):
    # 3 classes x 6 val images = 18; 4 ranks with batch 4: a step of 16 (4 each), then the last
    # 2 samples on rank 0: 6, 4, 4, 4 samples, 2 batches on every rank (the last ones empty).
    ranks = [augloader.Loader(dataset, split="val", batch_size=4, rank=r, world_size=4,
                              return_indices=True) for r in range(4)]
    got = [one_pass(r) for r in ranks]
    assert [len(g) for g in got] == [6, 4, 4, 4]
    assert [len(r) for r in ranks] == [2, 2, 2, 2]
    assert sorted(sum(got, [])) == list(range(18))
    padded = [one_pass(augloader.Loader(dataset, split="val", batch_size=4, rank=r, world_size=4,
                                        return_indices=True, even_batches=True)) for r in range(4)]
    assert [len(g) for g in padded] == [5, 5, 5, 5]


def test_pickle_and_deepcopy_rebuild_with_the_state(dataset):
    # A copy does what the original does next: after a pass left early, a whole epoch; after
    # load_state_dict, the rest of the saved epoch.
    L = loader(dataset, shuffle=True)
    it = iter(L)
    head = indices([next(it) for _ in range(2)])
    for copied in (pickle.loads(pickle.dumps(L)), copy.deepcopy(L)):
        assert one_pass(copied) == one_pass(loader(dataset))
    it.close()
    L.load_state_dict({**L.state_dict(), "position": len(head)})
    for copied in (pickle.loads(pickle.dumps(L)), copy.deepcopy(L)):
        assert head + one_pass(copied) == one_pass(loader(dataset))


def test_dataset_and_sampler_views(dataset):
    L = loader(dataset, workers=1)
    L.set_epoch(1)
    assert len(L.dataset) == 72 and L.dataset.classes == L.classes
    order = list(L.sampler)
    assert len(L.sampler) == 72 and sorted(order) == list(range(72))
    x, y, i = next(iter(L))
    assert i.tolist() == order[:8]
    for k in (0, 3):
        image, label = L.dataset[int(i[k])]
        assert torch.equal(image, x[k]) and label == int(y[k])
    L.sampler.set_epoch(5)
    assert L.epoch == 5
    with pytest.raises(IndexError):
        L.dataset[72]


def test_seed_none_draws_and_records_a_seed(dataset):
    torch.manual_seed(1)
    a = augloader.Loader(dataset, seed=None)
    torch.manual_seed(1)
    b = augloader.Loader(dataset, seed=None)
    assert a.seed == b.seed == a.state_dict()["seed"]
    assert augloader.Loader(dataset, seed=None).seed != a.seed


def test_context_manager_joins_the_workers(dataset):
    with loader(dataset) as L:
        it = iter(L)
        next(it)
        assert L._live
    assert not L._live
    with pytest.raises(StopIteration):
        next(it)


@pytest.mark.parametrize("channels_last", [False, True])
def test_float_normalised_batches_equal_torchvision_normalize(dataset, channels_last):
    u8 = loader(dataset, channels_last=channels_last)
    f32 = loader(dataset, channels_last=channels_last, dtype=torch.float32, normalize=True)
    mean = [m / 255 for m in u8.mean]
    std = [s / 255 for s in u8.std]
    norm = T.Compose([T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])
    for (x, _, i), (y, _, j) in zip(u8, f32):
        assert torch.equal(i, j) and y.dtype == torch.float32
        assert torch.allclose(y, norm(x), atol=1e-6, rtol=0)
        assert y.is_contiguous(memory_format=torch.channels_last) == channels_last
    own = loader(dataset, dtype="float32", normalize=((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
    plain = loader(dataset, dtype=torch.float32)
    half = loader(dataset, dtype=torch.bfloat16, normalize=True)
    u8.set_epoch(0)
    (x, _, _), (a, _, _), (b, _, _), (h, _, _) = (next(iter(m)) for m in (u8, own, plain, half))
    assert torch.allclose(a, (x / 255 - 0.5) / 0.25, atol=1e-5)
    assert torch.allclose(b, x / 255, atol=1e-7)
    assert h.dtype == torch.bfloat16


def test_cuda_without_a_gpu_fails_loudly(dataset):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present: scripts/gpu_check.sh exercises it")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        augloader.Loader(dataset, device="cuda")


def test_all_reduce_sum_without_distributed_is_the_identity():
    assert augloader.all_reduce_sum(3, 4.5) == (3, 4.5)


def test_close_from_another_thread_ends_a_waiting_pass_without_completing_the_epoch(dataset):
    import threading

    L = loader(dataset, workers=1, batch_size=2)
    it = iter(L)
    next(it)
    got = []
    t = threading.Thread(target=lambda: got.extend(it))
    t.start()
    L.close()
    t.join(timeout=20)
    assert not t.is_alive(), "close() from another thread deadlocked"
    if len(got) < 35:  # closed before its end (the usual case): the epoch is not done
        assert L.epoch == 0
        assert one_pass(L) == one_pass(loader(dataset))


def test_one_pass_iterated_from_two_threads_delivers_each_batch_once(dataset):
    import threading

    L = loader(dataset, batch_size=4)
    it = iter(L)
    got = [[], []]

    def drain(k):
        for b in it:
            got[k].append(b[2].tolist())

    threads = [threading.Thread(target=drain, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "two threads on one pass deadlocked"
    assert sorted(sum(got[0] + got[1], [])) == list(range(72))


def test_a_loader_used_after_fork_raises_in_the_child_instead_of_waiting(dataset):
    import os

    L = loader(dataset)
    it = iter(L)
    next(it)
    pid = os.fork()
    if pid == 0:  # the child: touch nothing but the loader, then leave at once
        code = 10
        try:
            for attempt in (lambda: next(it), lambda: iter(L)):
                try:
                    attempt()
                    code += 1
                except RuntimeError as e:
                    code -= 5 if "fork" in str(e) else 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child did not get two clear errors"
    assert len(list(it)) == 8  # the parent's pass goes on
