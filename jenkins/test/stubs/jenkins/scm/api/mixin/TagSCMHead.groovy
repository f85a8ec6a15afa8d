package jenkins.scm.api.mixin
interface TagSCMHead { long getTimestamp() }
