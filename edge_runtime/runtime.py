"""Everything a node needs before it can answer: config, home, device profile, NLU cascade.

The CLI commands (`run`, `ask`, `nlu`) and the daemon all start from here, so
they resolve the same files the same way and print the same errors.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.audio.vad import EndpointConfig
from edge_runtime.config import NodeConfig, load_config
from edge_runtime.home import DEMO_HOME_NAME, Home, demo_home, load_home
from edge_runtime.nlu.base import NluContext
from edge_runtime.nlu.cascade import Cascade, build_cascade
from edge_runtime.profiles import MachineFacts, Selection, load_profiles, select_profile
from edge_runtime.stt.base import SpeechToText, SttContext, build_engine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    config: NodeConfig
    home: Home
    home_label: str
    """The home file's path, or that the embedded demo home is used."""
    selection: Selection

    @property
    def profile_id(self) -> str:
        return self.selection.profile.id

    def tier_names(self) -> list[str]:
        """The profile's tiers, cut down to those the config names (`nlu.tiers`)."""
        enabled = self.selection.profile.tiers.enabled()
        wanted = self.config.nlu.tiers
        if wanted is None:
            return enabled
        missing = [name for name in wanted if name not in enabled]
        if missing:
            log.warning(
                "nlu.tiers names %s, which profile %s does not enable; left out",
                ", ".join(missing),
                self.profile_id,
            )
        return [name for name in enabled if name in wanted]

    def build_cascade(self) -> Cascade:
        context = NluContext(
            self.home,
            self.config.language,
            self.config.node_id,
            self.selection.profile,
            self.config.cache_dir,
        )
        return build_cascade(context, self.tier_names(), self.config.nlu.threshold)

    def build_speech(self) -> SpeechToText:
        """The profile's speech engine with the node's voice settings (loads its model)."""
        stt = self.selection.profile.stt
        voice = self.config.voice
        context = SttContext(
            self.home,
            self.config.language,
            stt.model,
            voice.grammar,
            self.config.cache_dir,
            dict(voice.stt_options),
        )
        return build_engine(stt.engine, context)

    def endpoint_config(self) -> EndpointConfig:
        voice = self.config.voice
        return EndpointConfig(
            threshold=voice.speech_threshold,
            silence_ms=voice.silence_ms,
            max_utterance_s=voice.max_utterance_s,
        )


def load_runtime(
    config_path: Path | None = None,
    home_path: Path | None = None,
    profile: str | None = None,
) -> Runtime:
    """Resolve config, home and profile; command-line options win over the config file."""
    config = load_config(config_path)
    home_file = home_path or config.home
    home = load_home(home_file) if home_file else demo_home()
    selection = select_profile(load_profiles(), MachineFacts.probe(), profile or config.profile)
    return Runtime(config, home, str(home_file) if home_file else DEMO_HOME_NAME, selection)
