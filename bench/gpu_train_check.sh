#!/usr/bin/env bash
# GPU: the training script itself end to end (ShortCNN with --compile, InceptionV3 eager) on a small synthetic
# repository with --device-cache; prints images/s, the scored test images and that best.pt has plain keys.
# Usage (repo root, a GPU machine): OUT=/some/dir bash bench/gpu_train_check.sh
set -x
W=/tmp/w; mkdir -p $W
python3 -m ben_hub.cli synth $W/a -n 1500 --no-s1 --quiet && python3 -m ben_hub.cli build $W/a -o $W/r --method fast --quiet >/dev/null || exit 1
for spec in "shortcnn --epochs 2 --compile" "inception_v3 --epochs 1 --max-batches 15"; do
  set -- $spec; m=$1; shift
  /usr/bin/time -f "%e s wall" python3 -m accelerate.commands.launch --mixed_precision bf16 --num_processes 1 --num_machines 1 --dynamo_backend no harness/train.py --repo $W/r --device-cache --model $m --out $W/runs "$@" > $OUT/$m.log 2>&1; echo "rc $? $m"; tail -3 $OUT/$m.log
  cp $W/runs/$m-resampled-seed0/run.json $OUT/$m.run.json 2>/dev/null
  python3 -c "import torch,json; sd=torch.load('$W/runs/$m-resampled-seed0/best.pt'); r=json.load(open('$W/runs/$m-resampled-seed0/run.json')); print('$m keys', list(sd)[:1], 'images/s', r['train_images_per_s'], 'test_images', r['test_images'], 'micro_f1', r['test']['micro_f1'], r['device'], r['mixed_precision'])"
done
