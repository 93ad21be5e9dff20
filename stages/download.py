"""Stage `download`: fetch the pinned sources of the world (data/sources.yaml, `world:` key; the
ones named in params `download.local` from a path on disk) into data/raw/, verify the
payload hashes and write data/raw/MANIFEST.json. One source at a time, or again by force:
`python -m askshift download --only NAME [--force]`."""
from askshift.study import layout
from askshift.study.stage import run_stage


def main(cfg) -> None:
    from askshift.study import download

    print(download.run(layout.SOURCES, layout.RAW, world=cfg.world, local=cfg.download.local.to_dict()))


if __name__ == "__main__":
    run_stage("download", main)
